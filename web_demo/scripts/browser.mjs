// Headless Debian Chromium through playwright-core (no browser download: the system binary).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

export const CHROMIUM = process.env.MOLEPORT_CHROMIUM || '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync',
];

export async function launchChromium() {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} not found: apt-get update && apt-get install -y --no-install-recommends chromium`);
  }
  let chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch (err) {
    throw new Error(`playwright-core is not installed in web_demo/node_modules (run npm ci there): ${err.message}`);
  }
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}

export function playwrightVersion() {
  return createRequire(import.meta.url)('playwright-core/package.json').version;
}
