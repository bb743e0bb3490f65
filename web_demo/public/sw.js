// Service worker: the page, its code, the LiteRT.js wasm runtime and the model are cached on the
// device, so the demo works offline after the first visit. build-info.js (written by
// scripts/build.mjs) names this build's version and its files; a new build replaces the cache.
/* global MOLEPORT_BUILD */
importScripts('./build-info.js');

const BUILD = self.MOLEPORT_BUILD;
const CACHE = `moleport-${BUILD.version}`;

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    await cache.addAll(BUILD.precache.map((p) => new Request(new URL(p, self.registration.scope), { cache: 'reload' })));
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    const names = await caches.keys();
    await Promise.all(names.filter((n) => n.startsWith('moleport-') && n !== CACHE).map((n) => caches.delete(n)));
    await self.clients.claim();
  })());
});

async function cacheFirst(request) {
  const cache = await caches.open(CACHE);
  const hit = await cache.match(request, { ignoreSearch: request.mode === 'navigate' });
  if (hit) return hit;
  const response = await fetch(request);
  if (response.ok && response.status === 200 && response.type === 'basic') {
    await cache.put(request, response.clone());
  }
  return response;
}

self.addEventListener('fetch', (event) => {
  const { request } = event;
  if (request.method !== 'GET' || new URL(request.url).origin !== self.location.origin) return;
  if (request.headers.has('range')) return;
  event.respondWith(cacheFirst(request));
});

// The page sends the URLs it actually used (the wasm variant this browser loaded, the model).
self.addEventListener('message', (event) => {
  const msg = event.data || {};
  if (msg.type !== 'cache-urls') return;
  const port = event.ports[0];
  event.waitUntil((async () => {
    try {
      const cache = await caches.open(CACHE);
      for (const url of msg.urls) {
        if (new URL(url).origin !== self.location.origin) continue;
        if (await cache.match(url)) continue;
        const response = await fetch(url, { cache: 'no-cache' });
        if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
        await cache.put(url, response);
      }
      port.postMessage({ ok: true, cached: (await cache.keys()).length, version: BUILD.version });
    } catch (err) {
      port.postMessage({ ok: false, error: String(err && err.message ? err.message : err) });
    }
  })());
});
