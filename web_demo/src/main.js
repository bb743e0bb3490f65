// The page: pick or take a photo, choose the square, run the bundle's model on this device.
import { initRuntime, Classifier, ModelError, checkSha256 } from './classifier.js';
import { decodeImageFile, captureVideoFrame, ImageInputError } from './decode.js';
import {
  preprocessRgba, checkSpec, centreSquare, squareAround, riskBand, PreprocessError, MIN_SIDE,
} from './preprocess.js';

const WASM_DIR = new URL('../vendor/litertjs/wasm/', import.meta.url).href;
const MODEL_DIR = new URL('../model/', import.meta.url);
const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);

const state = {
  spec: null, // checkSpec() result + the raw spec
  models: [], // models.json entries
  classifier: null,
  modelLoad: null, // promise of the current classifier
  image: null, // {bitmap, rgba, width, height, format, name}
  crop: null, // {x0, y0, size}
  lastTensor: null,
  lastResult: null,
  runtime: null,
  seq: 0,
};

// ---- messages --------------------------------------------------------------------------
function setStatus(text) {
  $('status').textContent = text;
}

function showMessage(text) {
  const el = $('message');
  el.textContent = text;
  el.hidden = !text;
}

function errorText(err) {
  if (err instanceof ImageInputError || err instanceof ModelError || err instanceof PreprocessError) return err.message;
  return `Unexpected error: ${err && err.message ? err.message : err}`;
}

// ---- configuration: spec.json + models.json ------------------------------------------
async function fetchJson(url, what) {
  let response;
  try {
    response = await fetch(url);
  } catch (err) {
    throw new ModelError(`Could not download ${what} (${url}): ${err.message || err}.`, err);
  }
  if (!response.ok) throw new ModelError(`Could not download ${what} (${url}): HTTP ${response.status}.`);
  try {
    return await response.json();
  } catch (err) {
    throw new ModelError(`${what} (${url}) is not valid JSON.`, err);
  }
}

async function loadConfig() {
  const models = await fetchJson(new URL('models.json', MODEL_DIR), 'the model list');
  const specUrl = new URL('spec.json', MODEL_DIR);
  let specBytes;
  try {
    const response = await fetch(specUrl);
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    specBytes = new Uint8Array(await response.arrayBuffer());
  } catch (err) {
    throw new ModelError(`Could not download the model spec (${specUrl}): ${err.message || err}.`, err);
  }
  await checkSha256(specBytes, models.spec_sha256, `the model spec (${specUrl})`);
  let spec;
  try {
    spec = JSON.parse(new TextDecoder().decode(specBytes));
  } catch (err) {
    throw new ModelError(`the model spec (${specUrl}) is not valid JSON.`, err);
  }
  state.spec = { ...checkSpec(spec), raw: spec };
  if (!Array.isArray(models.models) || models.models.length === 0) {
    throw new ModelError('models.json lists no TFLite model; rebuild with web_demo/scripts/build.sh BUNDLE_DIR.');
  }
  state.models = models.models;
  const select = $('precision');
  select.replaceChildren(...state.models.map((m) => {
    const opt = document.createElement('option');
    opt.value = m.precision;
    opt.textContent = `${m.precision} (${m.bytes >= 1e6 ? `${(m.bytes / 1e6).toFixed(1)} MB` : `${Math.ceil(m.bytes / 1e3)} kB`}${m.input && m.input.dtype !== 'float32' ? `, ${m.input.dtype} input` : ''})`;
    return opt;
  }));
  const wanted = params.get('precision') || models.default || state.models[0].precision;
  select.value = state.models.some((m) => m.precision === wanted) ? wanted : state.models[0].precision;
  $('model-name').textContent = `${models.bundle || 'bundle'} · ${spec.architecture}`;
  $('input-size').textContent = $('input-size-2').textContent = String(state.spec.size);
}

// ---- model --------------------------------------------------------------------------------
async function loadModel(precision) {
  const entry = state.models.find((m) => m.precision === precision);
  if (!entry) throw new ModelError(`no ${precision} model in this bundle`);
  const url = params.get('model') ? new URL(params.get('model'), location.href).href : new URL(entry.path, MODEL_DIR).href;
  if (state.classifier) state.classifier.delete();
  state.classifier = null;
  setStatus(`Loading the ${precision} model…`);
  const classifier = await Classifier.load(url, entry, { size: state.spec.size, melanomaIndex: state.spec.melanomaIndex });
  state.classifier = classifier;
  state.modelUrl = url;
  setStatus(`Ready: ${precision} model on LiteRT.js (${state.runtime.threads ? 'multi-threaded' : 'single-threaded'} WebAssembly).` +
    ' Take or choose a photo.');
  return classifier;
}

function switchModel(precision) {
  showMessage('');
  state.modelLoad = loadModel(precision);
  state.modelLoad.then(() => (state.image ? analyse() : null)).catch((err) => {
    setStatus('No model loaded.');
    showMessage(errorText(err));
  });
  return state.modelLoad;
}

// ---- crop editor ----------------------------------------------------------------------
const preview = { scale: 1, dragging: null };

function drawPreview() {
  const img = state.image;
  const canvas = $('preview');
  const maxW = Math.min(480, canvas.parentElement.clientWidth || 480);
  const scale = Math.min(maxW / img.width, 360 / img.height);
  canvas.width = Math.max(1, Math.round(img.width * scale));
  canvas.height = Math.max(1, Math.round(img.height * scale));
  preview.scale = scale;
  const ctx = canvas.getContext('2d');
  ctx.drawImage(img.bitmap, 0, 0, canvas.width, canvas.height);
  const { x0, y0, size } = state.crop;
  ctx.save();
  ctx.fillStyle = 'rgba(0,0,0,0.45)';
  ctx.beginPath();
  ctx.rect(0, 0, canvas.width, canvas.height);
  ctx.rect(x0 * scale, y0 * scale, size * scale, size * scale);
  ctx.fill('evenodd');
  ctx.strokeStyle = '#ffd166';
  ctx.lineWidth = 2;
  ctx.strokeRect(x0 * scale + 1, y0 * scale + 1, size * scale - 2, size * scale - 2);
  ctx.restore();
}

function syncSliders() {
  const { width, height } = state.image;
  const { x0, y0, size } = state.crop;
  const s = $('crop-size');
  s.min = String(Math.min(MIN_SIDE, Math.min(width, height)));
  s.max = String(Math.min(width, height));
  s.value = String(size);
  const x = $('crop-x');
  x.min = String(size / 2);
  x.max = String(width - size / 2);
  x.step = '0.5';
  x.value = String(x0 + size / 2);
  const y = $('crop-y');
  y.min = String(size / 2);
  y.max = String(height - size / 2);
  y.step = '0.5';
  y.value = String(y0 + size / 2);
}

let analyseTimer = null;
function setCrop(crop, { immediate = false } = {}) {
  state.crop = crop;
  syncSliders();
  drawPreview();
  clearTimeout(analyseTimer);
  if (immediate) return analyse();
  analyseTimer = setTimeout(analyse, 150);
  return null;
}

function cropFromSliders() {
  const { width, height } = state.image;
  return squareAround(width, height, Number($('crop-x').value), Number($('crop-y').value), Number($('crop-size').value));
}

function setupCropEditor() {
  for (const id of ['crop-size', 'crop-x', 'crop-y']) {
    $(id).addEventListener('input', () => state.image && setCrop(cropFromSliders()));
  }
  $('crop-reset').addEventListener('click', () => state.image && setCrop(centreSquare(state.image.width, state.image.height)));
  const canvas = $('preview');
  canvas.addEventListener('pointerdown', (ev) => {
    if (!state.image) return;
    canvas.setPointerCapture(ev.pointerId);
    preview.dragging = { x: ev.offsetX, y: ev.offsetY, crop: state.crop };
  });
  canvas.addEventListener('pointermove', (ev) => {
    if (!preview.dragging || !state.image) return;
    const { crop } = preview.dragging;
    const dx = (ev.offsetX - preview.dragging.x) / preview.scale;
    const dy = (ev.offsetY - preview.dragging.y) / preview.scale;
    setCrop(squareAround(state.image.width, state.image.height,
      crop.x0 + crop.size / 2 + dx, crop.y0 + crop.size / 2 + dy, crop.size));
  });
  const stop = () => { preview.dragging = null; };
  canvas.addEventListener('pointerup', stop);
  canvas.addEventListener('pointercancel', stop);
}

// ---- images ---------------------------------------------------------------------------
async function useImage(image, name) {
  if (state.image && state.image.bitmap) state.image.bitmap.close();
  state.image = { ...image, name };
  $('crop-section').hidden = false;
  return setCrop(centreSquare(image.width, image.height), { immediate: true });
}

async function onFile(file) {
  if (!file) return null;
  showMessage('');
  const seq = ++state.seq;
  setStatus(`Reading "${file.name}"…`);
  try {
    const image = await decodeImageFile(file);
    if (seq !== state.seq) { image.bitmap.close(); return null; }
    return await useImage(image, file.name);
  } catch (err) {
    setStatus('Choose another photo.');
    showMessage(errorText(err));
    $('result').dataset.state = 'error';
    return null;
  }
}

function drawModelInput(tensor, size) {
  const canvas = $('model-input');
  canvas.width = canvas.height = size;
  const ctx = canvas.getContext('2d');
  const img = ctx.createImageData(size, size);
  for (let p = 0; p < size * size; p++) {
    img.data[p * 4] = tensor[p * 3];
    img.data[p * 4 + 1] = tensor[p * 3 + 1];
    img.data[p * 4 + 2] = tensor[p * 3 + 2];
    img.data[p * 4 + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

function renderResult(result) {
  const { threshold } = state.spec;
  const band = riskBand(result.pMelanoma, threshold);
  const card = $('result');
  card.dataset.state = 'done';
  card.dataset.pMelanoma = String(result.pMelanoma);
  card.dataset.label = band.label;
  card.dataset.band = band.band;
  card.dataset.ms = result.ms.toFixed(2);
  $('p-melanoma').textContent = `${(100 * result.pMelanoma).toFixed(1)} %`;
  $('p-bar').style.width = `${Math.max(0, Math.min(1, result.pMelanoma)) * 100}%`;
  $('p-bar').className = band.band;
  $('t-mark').style.left = `${threshold * 100}%`;
  $('band').textContent = band.text;
  $('band').className = `band ${band.band}`;
  const entry = state.classifier.entry;
  $('details').textContent = `${entry.precision} model · ${result.ms.toFixed(1)} ms on this device · ` +
    `crop ${state.crop.size}px at (${state.crop.x0}, ${state.crop.y0}) of ${state.image.width}×${state.image.height}`;
  $('result-section').hidden = false;
}

async function analyse() {
  if (!state.image) return null;
  const seq = ++state.seq;
  try {
    const t0 = performance.now();
    const tensor = preprocessRgba(state.image.rgba, state.image.width, state.image.height,
      { size: state.spec.size, crop: state.crop });
    state.lastTensor = tensor;
    state.lastPreprocessMs = performance.now() - t0;
    drawModelInput(tensor, state.spec.size);
    $('result-section').hidden = false;
    const classifier = state.classifier || (state.modelLoad && (await state.modelLoad));
    if (!classifier) throw new ModelError('No model is loaded.');
    const result = await classifier.predict(tensor);
    if (seq !== state.seq) return null;
    state.lastResult = result;
    renderResult(result);
    setStatus(`Analysed "${state.image.name}".`);
    return result;
  } catch (err) {
    if (seq === state.seq) {
      showMessage(errorText(err));
      $('result').dataset.state = 'error';
    }
    return null;
  }
}

// ---- live camera (getUserMedia) ------------------------------------------------------
let stream = null;
function closeCamera() {
  if (stream) stream.getTracks().forEach((t) => t.stop());
  stream = null;
  $('camera-panel').hidden = true;
}

function setupCamera() {
  $('live-camera').addEventListener('click', async () => {
    showMessage('');
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      showMessage('Live camera needs HTTPS (or localhost). Use "Take a photo" instead.');
      return;
    }
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' }, audio: false });
    } catch (err) {
      showMessage(`Camera unavailable (${err.name || err.message}). Use "Take a photo" or "Choose a file".`);
      return;
    }
    const video = $('camera-video');
    video.srcObject = stream;
    $('camera-panel').hidden = false;
    await video.play();
  });
  $('camera-capture').addEventListener('click', async () => {
    try {
      const image = await captureVideoFrame($('camera-video'));
      closeCamera();
      await useImage(image, 'camera photo');
    } catch (err) {
      showMessage(errorText(err));
    }
  });
  $('camera-close').addEventListener('click', closeCamera);
}

// ---- offline: service worker ----------------------------------------------------------
async function setupOffline() {
  if (!('serviceWorker' in navigator)) {
    $('offline-status').textContent = 'Offline use: not available (service workers need HTTPS or localhost).';
    return false;
  }
  const registration = await navigator.serviceWorker.register(new URL('../sw.js', import.meta.url),
    { scope: new URL('../', import.meta.url).href });
  await navigator.serviceWorker.ready;
  await state.modelLoad;
  // Everything this page fetched from its own origin (wasm runtime, model), cached for offline use.
  const urls = performance.getEntriesByType('resource').map((e) => e.name)
    .filter((u) => new URL(u).origin === location.origin && !new URL(u).search);
  urls.push(state.modelUrl);
  const worker = registration.active || navigator.serviceWorker.controller;
  const reply = await new Promise((resolve, reject) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = (ev) => resolve(ev.data);
    setTimeout(() => reject(new Error('the service worker did not answer')), 60000);
    worker.postMessage({ type: 'cache-urls', urls: [...new Set(urls)] }, [channel.port2]);
  });
  if (!reply || !reply.ok) throw new Error(reply && reply.error ? reply.error : 'caching failed');
  $('offline-status').textContent = `Offline use: ready (${reply.cached} files cached on this device).`;
  $('offline-status').dataset.ready = 'true';
  return true;
}

// ---- start ------------------------------------------------------------------------------
function b64ToBytes(b64) {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function bytesToB64(bytes) {
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

async function start() {
  $('camera-input').addEventListener('change', (ev) => onFile(ev.target.files[0]));
  $('file-input').addEventListener('change', (ev) => onFile(ev.target.files[0]));
  $('precision').addEventListener('change', (ev) => switchModel(ev.target.value));
  setupCropEditor();
  setupCamera();
  await loadConfig();
  setStatus('Starting the on-device runtime…');
  state.runtime = await initRuntime(WASM_DIR, { threads: params.get('threads') !== '0' });
  return switchModel($('precision').value);
}

const ready = start();
ready.catch((err) => {
  setStatus('Not ready.');
  showMessage(errorText(err));
});

// Hooks for the browser test (web_demo/scripts/web_test.mjs) and the parity runner.
window.moleport = {
  state,
  ready: ready.then(() => ({ ok: true }), (err) => ({ ok: false, error: errorText(err) })),
  offlineReady: params.get('sw') === '0'
    ? Promise.resolve(false).finally(() => { $('offline-status').textContent = 'Offline use: disabled (?sw=0).'; })
    : ready.then(() => setupOffline()).catch((err) => {
      $('offline-status').textContent = `Offline use: not available (${err.message || err}).`;
      return false;
    }),
  /** Run the loaded model on a base64 size*size*3 uint8 HWC tensor (bypasses decoding and cropping). */
  async predictTensor(b64) {
    const classifier = state.classifier || (await state.modelLoad);
    return classifier.predict(b64ToBytes(b64));
  },
  lastTensorBase64: () => (state.lastTensor ? bytesToB64(state.lastTensor) : null),
  classifyFile: (file) => onFile(file),
};
