// Run a .tflite in headless Chromium through the demo page's own code (src/classifier.js via
// window.moleport.predictTensor) on canonical uint8 images. Used by the parity runner
// src/moleport/runtimes/litertjs.py.
//
// Usage: node run_batch.mjs --model-dir DIR [--precision fp32] [--no-threads]
//   DIR holds models.json, spec.json and the .tflite (as web_demo/public/model/ after a build).
//   The page is served from the sources (index.html, src/, public/, node_modules/@litertjs).
//   Protocol on stdin/stdout, one JSON object per line:
//     first line out: {"ready": true, "info": {...}} or {"ready": false, "error": "..."}
//     in:  {"images": "/path/batch.u8", "n": N}   (raw uint8 N x size x size x 3, HWC RGB)
//     out: {"ok": true, "p_melanoma": [...], "probabilities": [[...], ...], "ms": [...]} or {"ok": false, "error": "..."}
//   The process ends when stdin closes.
import { readFileSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { startServer } from './static_server.mjs';
import { launchChromium, playwrightVersion } from './browser.mjs';

const WEB = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const opt = { modelDir: null, precision: null, threads: true };
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--model-dir') opt.modelDir = argv[++i];
  else if (argv[i] === '--precision') opt.precision = argv[++i];
  else if (argv[i] === '--no-threads') opt.threads = false;
  else { console.error(`run_batch: unknown argument ${argv[i]}`); process.exit(2); }
}
const say = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);

async function main() {
  if (!opt.modelDir || !existsSync(join(opt.modelDir, 'models.json'))) {
    throw new Error(`--model-dir must hold models.json, spec.json and the model (got ${opt.modelDir})`);
  }
  const nm = join(WEB, 'node_modules', '@litertjs');
  const srv = await startServer({
    mounts: [
      ['/', join(WEB, 'public')],
      ['/index.html', join(WEB, 'index.html')],
      ['/src/', join(WEB, 'src')],
      ['/model/', resolve(opt.modelDir)],
      ['/vendor/litertjs/core/index.js', join(nm, 'core', 'dist', 'index.js')],
      ['/vendor/litertjs/wasm-utils/index.js', join(nm, 'wasm-utils', 'dist', 'index.js')],
      ['/vendor/litertjs/wasm/', join(nm, 'core', 'wasm')],
    ],
  });
  const browser = await launchChromium();
  const cleanup = async () => { await browser.close().catch(() => {}); await srv.close(); };
  try {
    const page = await browser.newPage();
    const pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    const q = new URLSearchParams({ sw: '0' });
    if (opt.precision) q.set('precision', opt.precision);
    if (!opt.threads) q.set('threads', '0');
    await page.goto(`${srv.url}index.html?${q}`);
    const ready = await page.evaluate(() => window.moleport.ready);
    if (!ready.ok) {
      say({ ready: false, error: ready.error });
      return;
    }
    const info = await page.evaluate(() => ({
      threads: window.moleport.state.runtime.threads,
      crossOriginIsolated: globalThis.crossOriginIsolated,
      precision: window.moleport.state.classifier.entry.precision,
      size: window.moleport.state.spec.size,
      userAgent: navigator.userAgent,
    }));
    info.chromium = browser.version();
    info.playwright = playwrightVersion();
    info.litertjs = JSON.parse(readFileSync(join(nm, 'core', 'package.json'), 'utf8')).version;
    say({ ready: true, info });
    const lines = createInterface({ input: process.stdin });
    for await (const line of lines) {
      if (!line.trim()) continue;
      try {
        const req = JSON.parse(line);
        const size = info.size * info.size * 3;
        const buf = readFileSync(req.images);
        if (buf.length !== req.n * size) throw new Error(`${req.images}: ${buf.length} bytes, expected ${req.n} x ${size}`);
        const p = [];
        const probabilities = [];
        const ms = [];
        for (let i = 0; i < req.n; i++) {
          const b64 = buf.subarray(i * size, (i + 1) * size).toString('base64');
          const r = await page.evaluate((x) => window.moleport.predictTensor(x), b64);
          p.push(r.pMelanoma);
          probabilities.push(r.probabilities);
          ms.push(r.ms);
        }
        say({ ok: true, p_melanoma: p, probabilities, ms });
      } catch (err) {
        say({ ok: false, error: `${err.message}${pageErrors.length ? ` (page: ${pageErrors.join('; ')})` : ''}` });
      }
    }
  } finally {
    await cleanup();
  }
}

main().catch((err) => {
  say({ ready: false, error: err.message || String(err) });
  process.exitCode = 1;
});
