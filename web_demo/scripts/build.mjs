// Assemble the static site in web_demo/dist/ from the page sources and an export bundle.
// Usage: node scripts/build.mjs BUNDLE_DIR
//   - copies the bundle's TFLite files, spec.json and labels.txt into public/model/ (checked
//     against manifest.json sizes and sha256) and writes public/model/models.json;
//   - copies index.html, src/, public/ and the @litertjs/core + wasm-utils modules and wasm files
//     (vendor/litertjs/) into dist/;
//   - writes dist/build-info.js (build version + files the service worker precaches).
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, copyFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const WEB = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const fail = (msg) => { console.error(`build: ${msg}`); process.exit(2); };
const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');

const bundleArg = process.argv[2];
if (!bundleArg) fail('usage: node scripts/build.mjs BUNDLE_DIR');
const bundle = resolve(bundleArg);
for (const f of ['manifest.json', 'spec.json']) {
  if (!existsSync(join(bundle, f))) fail(`${bundle}: not an export bundle (${f} missing); run \`make export\` first`);
}
let manifest;
try {
  manifest = JSON.parse(readFileSync(join(bundle, 'manifest.json'), 'utf8'));
} catch (err) {
  fail(`${bundle}/manifest.json: not valid JSON (${err.message})`);
}
const tflite = (manifest.files || []).filter((f) => f && f.format === 'tflite');
if (!tflite.some((f) => f.precision === 'fp32')) {
  fail(`${bundle}/manifest.json lists no fp32 tflite file (tflite entries: ${JSON.stringify(tflite.map((f) => f.precision))})`);
}
// spec.json and labels.txt must be the exported ones: manifest.json "documents" (sha256 + bytes).
const docs = new Map((manifest.documents || []).filter((d) => d && d.path).map((d) => [d.path, d]));
for (const name of ['spec.json', 'labels.txt']) {
  const entry = docs.get(name);
  if (!entry) fail(`${bundle}/manifest.json: "documents" does not list ${name}; re-export the bundle`);
  const p = join(bundle, name);
  if (!existsSync(p)) fail(`${p}: listed in manifest.json but missing`);
  const digest = sha256(readFileSync(p));
  if (digest !== entry.sha256) fail(`${p}: sha256 ${digest} != manifest.json ${entry.sha256} (changed after export)`);
}
const spec = JSON.parse(readFileSync(join(bundle, 'spec.json'), 'utf8'));
// Ship what parity decided: parity.json "ship" -> "web" (every .tflite that passed; the default is the smallest).
const parityPath = join(bundle, 'parity.json');
if (!existsSync(parityPath)) fail(`${parityPath}: not found; run \`moleport parity\` first (parity.json decides what ships)`);
const parity = JSON.parse(readFileSync(parityPath, 'utf8'));
if (parity.manifest_sha256 && parity.manifest_sha256 !== sha256(readFileSync(join(bundle, 'manifest.json')))) {
  fail(`${bundle}/manifest.json changed after parity judged it (parity.json manifest_sha256); re-run \`moleport parity\``);
}
const decision = parity.ship && parity.ship.web;
if (!decision || typeof decision !== 'object') {
  fail(`${parityPath} has no ship decision ("ship" -> "web"); re-run \`moleport parity\` on the bundle`);
}
if (!decision.fp32) fail(`${parityPath}: the fp32 model failed parity (${decision.why}); not building the page`);
const shipped = new Set(decision.ships || []);
const fp32 = tflite.find((f) => f.path === decision.fp32);

// --- public/model/ -------------------------------------------------------------------------
const modelDir = join(WEB, 'public', 'model');
rmSync(modelDir, { recursive: true, force: true });
mkdirSync(modelDir, { recursive: true });
const models = [];
for (const f of tflite) {
  if (!shipped.has(f.path)) {
    console.log(`build: skipping ${f.path}: ${(decision.rejected || {})[f.path] || 'not shipped'} (see ${parityPath})`);
    continue;
  }
  const src = join(bundle, f.path);
  if (!existsSync(src)) fail(`${src}: listed in manifest.json but missing`);
  const data = readFileSync(src);
  if (f.bytes !== undefined && f.bytes !== data.length) fail(`${src}: ${data.length} bytes, manifest.json says ${f.bytes}`);
  const digest = sha256(data);
  if (f.sha256 !== digest) fail(`${src}: sha256 ${digest} != manifest.json ${f.sha256}`);
  const name = basename(f.path);
  writeFileSync(join(modelDir, name), data);
  models.push({ path: name, precision: f.precision, bytes: data.length, sha256: digest,
    input: f.input ?? null, output: f.output ?? null });
}
const order = ['fp32', 'fp16', 'int8'];
models.sort((a, b) => order.indexOf(a.precision) - order.indexOf(b.precision));
copyFileSync(join(bundle, 'spec.json'), join(modelDir, 'spec.json'));
if (existsSync(join(bundle, 'labels.txt'))) copyFileSync(join(bundle, 'labels.txt'), join(modelDir, 'labels.txt'));
// models.json: the list the page checks what it loads against (models[].sha256, spec_sha256).
writeFileSync(join(modelDir, 'models.json'), JSON.stringify({
  bundle: manifest.name || basename(bundle), default: 'fp32', smallest: decision.default_precision, models,
  spec_sha256: docs.get('spec.json').sha256, labels_sha256: docs.get('labels.txt').sha256,
}, null, 2) + '\n');

// --- dist/ -------------------------------------------------------------------------------------
const dist = join(WEB, 'dist');
rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });
copyFileSync(join(WEB, 'index.html'), join(dist, 'index.html'));
cpSync(join(WEB, 'src'), join(dist, 'src'), { recursive: true });
cpSync(join(WEB, 'public'), dist, { recursive: true });
const core = join(WEB, 'node_modules', '@litertjs', 'core');
const utils = join(WEB, 'node_modules', '@litertjs', 'wasm-utils');
for (const p of [join(core, 'dist', 'index.js'), join(utils, 'dist', 'index.js'), join(core, 'wasm')]) {
  if (!existsSync(p)) fail(`${p} missing: run npm ci in web_demo (scripts/build.sh does)`);
}
const vendor = join(dist, 'vendor', 'litertjs');
mkdirSync(join(vendor, 'core'), { recursive: true });
mkdirSync(join(vendor, 'wasm-utils'), { recursive: true });
copyFileSync(join(core, 'dist', 'index.js'), join(vendor, 'core', 'index.js'));
copyFileSync(join(utils, 'dist', 'index.js'), join(vendor, 'wasm-utils', 'index.js'));
cpSync(join(core, 'wasm'), join(vendor, 'wasm'), { recursive: true });
for (const lic of ['LICENSE', 'README.md']) {
  if (existsSync(join(core, lic))) copyFileSync(join(core, lic), join(vendor, lic));
}

// --- build-info.js --------------------------------------------------------------------------
function walk(dir) {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}
const files = walk(dist).map((p) => relative(dist, p).split(sep).join('/')).sort();
const version = sha256(files.map((f) => `${f}:${sha256(readFileSync(join(dist, f)))}`).join('\n')).slice(0, 16);
// Precached at install: the page and its code, the spec and the default model. The wasm
// variant a browser actually loads is cached when the page reports it (see src/main.js).
const isRuntime = (f) => f.startsWith('vendor/litertjs/wasm/') || f.endsWith('.tflite') || f === 'sw.js' ||
  f.startsWith('vendor/litertjs/') && !f.endsWith('index.js');
const precache = ['./', ...files.filter((f) => !isRuntime(f)), `model/${models[0].path}`];
writeFileSync(join(dist, 'build-info.js'),
  `// Written by web_demo/scripts/build.mjs; read by sw.js.\nself.MOLEPORT_BUILD = ${JSON.stringify(
    { version, bundle: manifest.name || basename(bundle), threshold: spec.threshold, precache: precache.map((f) => (f === './' ? f : `./${f}`)) },
    null, 2)};\n`);
console.log(`build: ${dist} (version ${version}; models ${models.map((m) => `${m.precision}=${m.path}`).join(', ')})`);
