// The browser test of the built demo (web_demo/dist/) in headless Debian Chromium.
// Usage: node web_test.mjs --golden FIXTURE_DIR --reference reference.json --screenshot OUT.png
// (web_test.sh prepares the fixture with `moleport golden` and reference.json with reference.py.)
//
// Checks: the page loads cross-origin isolated with the model; each golden PNG picked in the
// page gives a tensor within ±1 level of the canonical one and P(melanoma) within 1e-3 of the
// Python LiteRT interpreter's (no label flip at the spec threshold), also when the canonical tensor
// is fed directly; bad inputs (text file, 12000x12000 PNG, missing model) show clear messages;
// after the first visit the service worker serves page + runtime + model with the server stopped.
// Ends with "N passed, N failed"; exit code 1 on any failure.
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';
import { launchChromium } from './browser.mjs';

const WEB = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const P_TOL = 1e-3;
const LEVEL_TOL = 1;

const opt = {};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) opt[argv[i].replace(/^--/, '')] = argv[i + 1];
for (const k of ['golden', 'reference', 'screenshot']) {
  if (!opt[k]) {
    console.error('usage: node web_test.mjs --golden DIR --reference JSON --screenshot PNG');
    process.exit(2);
  }
}

const results = [];
function check(name, ok, detail = '') {
  results.push({ name, ok });
  console.log(`${ok ? 'PASS' : 'FAIL'} ${name}${detail ? ` — ${detail}` : ''}`);
  return ok;
}

// ---- a PNG that declares 12000x12000 pixels (header only: must be refused before decoding) ----
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function pngChunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}
function hugePng(side) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(side, 0);
  ihdr.writeUInt32BE(side, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  const firstRows = deflateSync(Buffer.alloc((side * 3 + 1) * 4)); // a few rows; the rest is missing
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr), pngChunk('IDAT', firstRows), pngChunk('IEND', Buffer.alloc(0))]);
}

// ---- server ----------------------------------------------------------------------------
function startServe() {
  const child = spawn(process.execPath, [join(WEB, 'scripts', 'serve.mjs'), '--port', '0', '--quiet',
    '--root', join(WEB, 'dist')], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolveUrl, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /serving (http:\/\/[^ ]+\/)/.exec(out);
      if (m) resolveUrl({ child, url: m[1] });
    });
    child.on('exit', (code) => reject(new Error(`serve.mjs exited (${code}) before listening: ${out}`)));
  });
}

const stats = { tensorMax: 0, tensorDiffValues: 0, pMaxE2E: 0, pMaxTensor: 0, inferMs: [], prepMs: [] };

async function pickFile(page, files) {
  await page.evaluate(() => { window.moleport.state.lastResult = null; });
  await page.setInputFiles('#file-input', files);
}

async function classifyPng(page, path, name) {
  await pickFile(page, path);
  await page.waitForFunction((n) => {
    const s = window.moleport.state;
    return (s.lastResult && s.image && s.image.name === n) || !document.getElementById('message').hidden;
  }, `${name}.png`, { timeout: 60000 });
  return page.evaluate(() => {
    const s = window.moleport.state;
    const card = document.getElementById('result');
    return {
      result: s.lastResult,
      tensor: window.moleport.lastTensorBase64(),
      shown: card.dataset.pMelanoma ? Number(card.dataset.pMelanoma) : null,
      label: card.dataset.label,
      message: document.getElementById('message').hidden ? '' : document.getElementById('message').textContent,
      prepMs: s.lastPreprocessMs,
    };
  });
}

async function expectMessage(page, name, files, pattern) {
  await page.evaluate(() => { document.getElementById('message').hidden = true; });
  await pickFile(page, files);
  try {
    await page.waitForFunction(() => !document.getElementById('message').hidden, null, { timeout: 30000 });
  } catch {
    return check(name, false, 'no message shown');
  }
  const text = await page.textContent('#message');
  return check(name, pattern.test(text), JSON.stringify(text));
}

async function main() {
  const index = JSON.parse(readFileSync(join(opt.golden, 'index.json'), 'utf8'));
  const ref = JSON.parse(readFileSync(opt.reference, 'utf8'));
  const threshold = ref.threshold;
  const fp32 = ref.models.fp32.probabilities;
  const mel = ref.melanoma_index;
  let server = await startServe();
  const browser = await launchChromium();
  const context = await browser.newContext({ viewport: { width: 1000, height: 900 } });
  const page = await context.newPage();
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  try {
    // 1. The page, the runtime and the fp32 model.
    await page.goto(server.url);
    const ready = await page.evaluate(() => window.moleport.ready);
    const env = await page.evaluate(() => ({
      isolated: globalThis.crossOriginIsolated, threads: window.moleport.state.runtime?.threads,
      precision: window.moleport.state.classifier?.entry.precision,
    }));
    check('page loads the fp32 model on LiteRT.js', ready.ok && env.precision === 'fp32',
      ready.ok ? `threads=${env.threads}` : ready.error);
    check('page is cross-origin isolated (COOP/COEP)', env.isolated === true);
    if (!ready.ok) throw new Error('the page did not load; later checks cannot run');
    const privacy = await page.textContent('#privacy');
    const notice = await page.textContent('#notice');
    check('page says nothing is uploaded and shows the not-a-diagnosis notice',
      /nothing is uploaded/i.test(privacy) && /not a diagnosis/i.test(notice) && /dermatologist/i.test(notice));

    // 2. Golden images through the page (decode -> crop -> resize -> model).
    let shotDone = false;
    for (const e of index.images) {
      const r = await classifyPng(page, join(opt.golden, e.png), e.name);
      if (r.message || !r.result) {
        check(`${e.name}: page result`, false, r.message || 'no result');
        continue;
      }
      const got = Buffer.from(r.tensor, 'base64');
      const want = readFileSync(join(opt.golden, e.tensor_file));
      let maxDiff = got.length === want.length ? 0 : Infinity;
      let nDiff = 0;
      for (let i = 0; i < Math.min(got.length, want.length); i++) {
        const d = Math.abs(got[i] - want[i]);
        if (d) nDiff++;
        maxDiff = Math.max(maxDiff, d);
      }
      stats.tensorMax = Math.max(stats.tensorMax, maxDiff);
      stats.tensorDiffValues += nDiff;
      check(`${e.name}: page tensor within ±${LEVEL_TOL} of canonical`, maxDiff <= LEVEL_TOL,
        `max |Δ| ${maxDiff}, ${nDiff} of ${want.length} values differ`);
      const pRef = fp32[e.name][mel];
      const dp = Math.abs(r.result.pMelanoma - pRef);
      stats.pMaxE2E = Math.max(stats.pMaxE2E, dp);
      stats.inferMs.push(r.result.ms);
      stats.prepMs.push(r.prepMs);
      const flip = (r.result.pMelanoma >= threshold) !== (pRef >= threshold);
      check(`${e.name}: page P(melanoma) vs Python LiteRT`, dp <= P_TOL && !flip && r.shown === r.result.pMelanoma,
        `page ${r.result.pMelanoma.toFixed(6)} ref ${pRef.toFixed(6)} |Δp| ${dp.toExponential(2)}${flip ? ' LABEL FLIP' : ''}`);
      // Same model code on the exact canonical tensor.
      const t = await page.evaluate((b64) => window.moleport.predictTensor(b64), want.toString('base64'));
      const dt = Math.abs(t.pMelanoma - pRef);
      stats.pMaxTensor = Math.max(stats.pMaxTensor, dt);
      const flipT = (t.pMelanoma >= threshold) !== (pRef >= threshold);
      check(`${e.name}: canonical tensor in the page vs Python LiteRT`, dt <= P_TOL && !flipT,
        `|Δp| ${dt.toExponential(2)}${flipT ? ' LABEL FLIP' : ''}`);
      if (!shotDone && e.name.startsWith('photo')) {
        mkdirSync(dirname(opt.screenshot), { recursive: true });
        await page.screenshot({ path: opt.screenshot, fullPage: true });
        shotDone = true;
      }
    }
    if (!shotDone) await page.screenshot({ path: opt.screenshot, fullPage: true });
    check(`screenshot of a result saved to ${opt.screenshot}`, true);

    // 3. Bad input, each with a clear message.
    await expectMessage(page, 'a text file picked as the photo is refused as "not an image"',
      { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('this is not a picture of a mole\n') },
      /not an image/i);
    await expectMessage(page, 'a PNG declaring 12000x12000 pixels is refused before decoding',
      { name: 'huge.png', mimeType: 'image/png', buffer: hugePng(12000) }, /too large.*12000x12000.*limit/i);
    await expectMessage(page, 'a truncated PNG is refused as corrupt',
      { name: 'broken.png', mimeType: 'image/png', buffer: readFileSync(join(opt.golden, index.images[0].png)).subarray(0, 200) },
      /could not be decoded/i);
    const bad = await context.newPage();
    await bad.goto(`${server.url}?model=model/does-not-exist.tflite&sw=0`);
    const badReady = await bad.evaluate(() => window.moleport.ready);
    const badMsg = await bad.textContent('#message');
    check('a model URL that fails to load shows a clear message', !badReady.ok && /could not download the model.*404/i.test(badMsg),
      JSON.stringify(badMsg));
    await bad.close();
    const models = JSON.parse(readFileSync(join(WEB, 'dist', 'model', 'models.json'), 'utf8')).models;
    if (models.some((m) => m.precision === 'int8')) {
      const q = await context.newPage();
      await q.goto(`${server.url}?precision=int8&sw=0`);
      const qReady = await q.evaluate(() => window.moleport.ready);
      const qMsg = await q.textContent('#message');
      check('selecting the int8 model loads it or explains why not', qReady.ok || /int8/i.test(qMsg),
        qReady.ok ? 'loaded' : JSON.stringify(qMsg));
      await q.close();
    }

    // 4. Offline: the service worker serves everything with the server stopped.
    const offlineReady = await page.evaluate(() => window.moleport.offlineReady);
    check('service worker reports the page, runtime and model cached', offlineReady === true,
      await page.textContent('#offline-status'));
    const before = await classifyPng(page, join(opt.golden, index.images[0].png), index.images[0].name);
    server.child.kill('SIGTERM');
    await new Promise((r) => server.child.once('exit', r));
    const down = await fetch(server.url).then(() => false, () => true);
    await page.reload();
    const offReady = await page.evaluate(() => window.moleport.ready);
    const after = offReady.ok ? await classifyPng(page, join(opt.golden, index.images[0].png), index.images[0].name) : null;
    check('with the server stopped the page reloads and classifies from the cache',
      down && offReady.ok && after && after.result && after.result.pMelanoma === before.result.pMelanoma,
      offReady.ok ? `P(melanoma) ${after?.result?.pMelanoma}` : offReady.error);
    server = null;
  } catch (err) {
    check('test run', false, err.stack || String(err));
  } finally {
    await browser.close();
    if (server) server.child.kill('SIGTERM');
  }
  if (pageErrors.length) console.log(`page errors: ${pageErrors.join(' | ')}`);
  const median = (a) => (a.length ? [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)] : NaN);
  console.log(JSON.stringify({
    images: index.images.length, max_abs_dp_page: stats.pMaxE2E, max_abs_dp_canonical_tensor: stats.pMaxTensor,
    tensor_max_abs_diff: stats.tensorMax, tensor_values_differing: stats.tensorDiffValues,
    inference_ms_median: median(stats.inferMs), preprocess_ms_median: median(stats.prepMs),
  }));
  const failed = results.filter((r) => !r.ok).length;
  console.log(`${results.length - failed} passed, ${failed} failed`);
  process.exitCode = failed ? 1 : 0;
}

main();
