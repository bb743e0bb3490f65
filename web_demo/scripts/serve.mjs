// Serve web_demo/dist/ (or --root DIR) with COOP/COEP headers. No dependencies.
// Usage: node scripts/serve.mjs [--host 127.0.0.1] [--port 8080] [--root DIR] [--quiet]
// --port 0 picks a free port. The first line printed is "serving http://HOST:PORT/ ...".
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer } from './static_server.mjs';

const WEB = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = { host: '127.0.0.1', port: '8080', root: join(WEB, 'dist'), quiet: false };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--quiet') { args.quiet = true; continue; }
  const m = /^--(host|port|root)(?:=(.*))?$/.exec(a);
  if (!m) {
    console.error(`serve: unknown argument ${a}\nusage: serve.mjs [--host H] [--port P] [--root DIR] [--quiet]`);
    process.exit(2);
  }
  args[m[1]] = m[2] ?? argv[++i];
}
const root = resolve(args.root);
if (!existsSync(join(root, 'index.html'))) {
  console.error(`serve: ${root}/index.html missing; build first: make web (web_demo/scripts/build.sh BUNDLE_DIR)`);
  process.exit(2);
}
const port = Number(args.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`serve: bad port ${args.port}`);
  process.exit(2);
}
try {
  const srv = await startServer({ mounts: [['/', root]], host: args.host, port, log: args.quiet ? null : console.log });
  console.log(`serving ${srv.url} from ${root} (COOP/COEP on; Ctrl-C to stop)`);
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => srv.close().then(() => process.exit(0)));
} catch (err) {
  console.error(`serve: cannot listen on ${args.host}:${port}: ${err.message}`);
  process.exit(1);
}
