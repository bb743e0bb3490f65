// The bundle's .tflite on LiteRT.js (WebAssembly/XNNPack on the CPU): load, run, free.
import { loadLiteRt, loadAndCompile, Tensor, supportsFeature } from '@litertjs/core';
import { toFloat32, quantizeInt8 } from './preprocess.js';

/** A model that cannot be used; `message` is meant for people. */
export class ModelError extends Error {
  constructor(message, cause) {
    super(message);
    this.name = 'ModelError';
    if (cause) this.cause = cause;
  }
}

let runtime = null;

/**
 * Load the LiteRT.js wasm runtime once per page from the directory `wasmDir` (ends with '/').
 * Threads need cross-origin isolation (COOP/COEP headers) and relaxed SIMD.
 * Resolves to {threads, relaxedSimd}.
 */
export function initRuntime(wasmDir, { threads = true } = {}) {
  if (runtime) return runtime;
  runtime = (async () => {
    const relaxedSimd = await supportsFeature('relaxedSimd');
    const useThreads = Boolean(threads && globalThis.crossOriginIsolated && relaxedSimd &&
      (await supportsFeature('threads')));
    try {
      await loadLiteRt(wasmDir, { threads: useThreads });
    } catch (err) {
      runtime = null;
      throw new ModelError(`Could not start the LiteRT.js runtime from ${wasmDir}: ${err.message || err}`, err);
    }
    return { threads: useThreads, relaxedSimd };
  })();
  return runtime;
}

function describe(details) {
  return details.map((d) => `${d.name} ${d.dtype}[${Array.from(d.shape).join(',')}]`).join(', ');
}

/**
 * A compiled classifier for one bundle entry.
 * `entry` is the model's row of models.json: {path, precision, input: {dtype, quantization}, output: {...}}.
 */
/**
 * Refuse `bytes` whose sha256 differs from `expected` (the list scripts/build.mjs writes in models.json).
 * WebCrypto exists only in secure contexts (https, localhost); elsewhere the check is skipped with a warning.
 */
export async function checkSha256(bytes, expected, what) {
  if (!expected) throw new ModelError(`${what}: models.json records no sha256 for it; rebuild the page.`);
  const subtle = globalThis.crypto && globalThis.crypto.subtle;
  if (!subtle) {
    console.warn(`moleport: no WebCrypto here (not a secure context); ${what} not checked against models.json`);
    return;
  }
  const digest = Array.from(new Uint8Array(await subtle.digest('SHA-256', bytes)),
    (b) => b.toString(16).padStart(2, '0')).join('');
  if (digest !== expected) {
    throw new ModelError(`${what} is not the file this page was built with (sha256 ${digest.slice(0, 16)}…, ` +
      `models.json says ${expected.slice(0, 16)}…); reload, or rebuild the page.`);
  }
}

export class Classifier {
  constructor(model, entry, { size, melanomaIndex }) {
    this.model = model;
    this.entry = entry;
    this.size = size;
    this.melanomaIndex = melanomaIndex;
  }

  /** Fetch `url`, check it is a TFLite flatbuffer and compile it for the wasm (CPU) accelerator. */
  static async load(url, entry, { size, melanomaIndex }) {
    let response;
    try {
      response = await fetch(url);
    } catch (err) {
      throw new ModelError(`Could not download the model ${url} (${err.message || err}). ` +
        'Check your connection; once loaded the page works offline.', err);
    }
    if (!response.ok) {
      throw new ModelError(`Could not download the model ${url}: HTTP ${response.status} ${response.statusText}.`);
    }
    const bytes = new Uint8Array(await response.arrayBuffer());
    await checkSha256(bytes, entry && entry.sha256, url);
    const magic = bytes.length >= 8 ? String.fromCharCode(...bytes.subarray(4, 8)) : '';
    if (magic !== 'TFL3') {
      throw new ModelError(`${url} is not a TFLite model (${bytes.length} bytes, no TFL3 identifier).`);
    }
    let model;
    try {
      model = await loadAndCompile(bytes, { accelerator: 'wasm' });
    } catch (err) {
      const msg = String(err && err.message ? err.message : err);
      if (/INT8/i.test(msg)) {
        throw new ModelError(`The ${entry.precision} model has int8 input/output tensors, which this LiteRT.js ` +
          `version cannot feed (${msg}). Choose the fp32 model.`, err);
      }
      throw new ModelError(`LiteRT.js could not compile ${url}: ${msg}`, err);
    }
    const inputs = model.getInputDetails();
    const outputs = model.getOutputDetails();
    const shapeOk = inputs.length === 1 && Array.from(inputs[0].shape).join(',') === `1,${size},${size},3`;
    const outOk = outputs.length === 1 && Array.from(outputs[0].shape).reduce((a, b) => a * b, 1) === 2;
    if (!shapeOk || !outOk) {
      model.delete();
      throw new ModelError(`${url} does not take one NHWC [1,${size},${size},3] image and return 2 probabilities ` +
        `(inputs: ${describe(inputs)}; outputs: ${describe(outputs)}).`);
    }
    return new Classifier(model, entry, { size, melanomaIndex });
  }

  /** Run on one size x size x 3 uint8 HWC image; returns {probabilities, pMelanoma, ms}. */
  async predict(u8) {
    if (!this.model) throw new ModelError('the model was released');
    if (u8.length !== this.size * this.size * 3) {
      throw new ModelError(`expected ${this.size}x${this.size}x3 = ${this.size * this.size * 3} values, got ${u8.length}`);
    }
    const t0 = performance.now();
    const q = this.entry.input && this.entry.input.quantization;
    const data = this.entry.input && this.entry.input.dtype === 'int8'
      ? quantizeInt8(u8, q.scale, q.zero_point)
      : toFloat32(u8);
    let input = null;
    let outputs = [];
    let raw;
    try {
      input = new Tensor(data, [1, this.size, this.size, 3]);
      outputs = await this.model.run(input);
      raw = Array.from(outputs[0].toTypedArray());
    } finally {
      if (input) input.delete();
      for (const t of outputs) t.delete();
    }
    const oq = this.entry.output && this.entry.output.quantization;
    const probabilities = this.entry.output && this.entry.output.dtype === 'int8'
      ? raw.map((v) => (v - oq.zero_point) * oq.scale)
      : raw;
    const ms = performance.now() - t0;
    if (probabilities.length !== 2 || !probabilities.every(Number.isFinite)) {
      throw new ModelError(`the model returned ${JSON.stringify(probabilities)} instead of two probabilities`);
    }
    return { probabilities, pMelanoma: probabilities[this.melanomaIndex], ms };
  }

  delete() {
    if (this.model) this.model.delete();
    this.model = null;
  }
}
