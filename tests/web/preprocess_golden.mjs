// Run web_demo/src/preprocess.js on a moleport-golden-v1 fixture in Node (no browser).
// Usage: node preprocess_golden.mjs FIXTURE_DIR OUT_DIR [CROPS_JSON]
// For each image: stored RGBA -> EXIF orientation -> canonical (or given) crop -> 224x224x3,
// written as OUT_DIR/<name>.js.tensor (raw uint8 HWC). CROPS_JSON maps name -> {x0, y0, size}.
// Prints one JSON line: {"images": N, "ms": total}.
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const pre = await import(pathToFileURL(resolve(here, '../../web_demo/src/preprocess.js')).href);

const [fixture, outDir, cropsPath] = process.argv.slice(2);
if (!fixture || !outDir) {
  console.error('usage: node preprocess_golden.mjs FIXTURE_DIR OUT_DIR [CROPS_JSON]');
  process.exit(2);
}
const index = JSON.parse(readFileSync(join(fixture, 'index.json'), 'utf8'));
if (index.format !== 'moleport-golden-v1') throw new Error(`unknown fixture format ${index.format}`);
const crops = cropsPath ? JSON.parse(readFileSync(cropsPath, 'utf8')) : {};
mkdirSync(outDir, { recursive: true });
const t0 = performance.now();
for (const e of index.images) {
  const rgba = new Uint8Array(readFileSync(join(fixture, e.rgba_file)));
  const img = pre.orientRgba(rgba, e.width, e.height, e.orientation);
  if (img.width !== e.decoded_width || img.height !== e.decoded_height) {
    throw new Error(`${e.name}: oriented size ${img.width}x${img.height} != ${e.decoded_width}x${e.decoded_height}`);
  }
  const tensor = pre.preprocessRgba(img.data, img.width, img.height,
    { size: index.input_size, crop: crops[e.name] ?? null });
  writeFileSync(join(outDir, `${e.name}.js.tensor`), tensor);
}
console.log(JSON.stringify({ images: index.images.length, ms: performance.now() - t0 }));
