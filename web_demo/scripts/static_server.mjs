// A small static file server with the headers the page needs: COOP/COEP make the page
// cross-origin isolated (SharedArrayBuffer, so LiteRT.js can use its threaded wasm).
// Used by serve.mjs (the dist/ folder) and run_batch.mjs (sources + one model). No dependencies.
import { createServer } from 'node:http';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { extname, join, normalize, resolve, sep } from 'node:path';

export const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8', '.json': 'application/json', '.webmanifest': 'application/manifest+json',
  '.wasm': 'application/wasm', '.tflite': 'application/octet-stream', '.png': 'image/png', '.svg': 'image/svg+xml',
  '.txt': 'text/plain; charset=utf-8', '.md': 'text/markdown; charset=utf-8', '.map': 'application/json',
};
export const ISOLATION_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'X-Content-Type-Options': 'nosniff',
};

/** Map a URL path onto a file through `mounts` ([urlPrefix, fsPath] pairs, longest prefix first). */
function lookup(mounts, path) {
  for (const [prefix, target] of mounts) {
    if (prefix.endsWith('/') ? !path.startsWith(prefix) : path !== prefix) continue;
    const base = resolve(target);
    let file = prefix.endsWith('/') ? normalize(join(base, path.slice(prefix.length))) : base;
    if (file !== base && !file.startsWith(base + sep)) return { status: 403 };
    if (existsSync(file) && statSync(file).isDirectory()) file = join(file, 'index.html');
    if (existsSync(file) && statSync(file).isFile()) return { status: 200, file };
  }
  return { status: 404 };
}

/**
 * Start serving. `mounts`: [urlPrefix, fsPath] pairs ('/src/' -> a folder, '/index.html' -> a file).
 * Resolves to {server, url, port, close()}. `port` 0 picks a free port.
 */
export function startServer({ mounts, host = '127.0.0.1', port = 0, log = null }) {
  const sorted = [...mounts].sort((a, b) => b[0].length - a[0].length);
  const server = createServer((req, res) => {
    const plain = (status, text) => {
      res.writeHead(status, { ...ISOLATION_HEADERS, 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' });
      res.end(text);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return plain(405, 'method not allowed\n');
    let path;
    try {
      path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    } catch {
      return plain(400, 'bad request\n');
    }
    const hit = lookup(sorted, path);
    if (log) res.on('finish', () => log(`${res.statusCode} ${req.method} ${path}`));
    if (hit.status !== 200) return plain(hit.status, hit.status === 403 ? 'forbidden\n' : `not found: ${path}\n`);
    res.writeHead(200, {
      ...ISOLATION_HEADERS,
      'Content-Type': TYPES[extname(hit.file).toLowerCase()] || 'application/octet-stream',
      'Content-Length': statSync(hit.file).size,
      'Cache-Control': 'no-cache', // revalidate; offline copies live in the service worker's cache
    });
    if (req.method === 'HEAD') return res.end();
    const stream = createReadStream(hit.file);
    stream.on('error', () => res.destroy());
    return stream.pipe(res);
  });
  return new Promise((resolvePromise, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const actual = server.address().port;
      const h = host.includes(':') ? `[${host}]` : host;
      resolvePromise({
        server,
        port: actual,
        url: `http://${h}:${actual}/`,
        close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); }),
      });
    });
  });
}
