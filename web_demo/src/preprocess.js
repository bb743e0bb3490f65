// Canonical preprocessing in JavaScript: a re-implementation of moleport.preprocess
// (Python, the reference) for the browser and for Node. Pure functions only: no DOM,
// no canvas, no I/O. Rule `center-square-crop+triangle-antialias-v1`:
//
//   1. RGBA -> RGB: alpha composited over white, out = floor((c*a + 255*(255-a))/255 + 0.5).
//   2. Square crop: by default the centre square, s = min(W, H), x0 = (W-s)>>1, y0 = (H-s)>>1
//      (the web demo also lets the user move/resize the square; the rule for the pixels is the same).
//   3. Separable triangle (bilinear) filter widened by the downscale factor, as Pillow's
//      BILINEAR: scale = s/N, fs = max(scale, 1); for output i: c = (i+0.5)*scale,
//      lo = max(floor(c - fs + 0.5), 0), hi = min(floor(c + fs + 0.5), s),
//      w_j = max(0, 1 - |(j - c + 0.5)/fs|) for j in [lo, hi), normalised to sum 1.
//   4. Horizontal pass first, rounded to uint8; then the vertical pass, rounded to uint8.
//      Rounding is floor(v + 0.5) clipped to [0, 255]; all arithmetic in float64.
//
// Results match Python within ±1 grey level (the order of floating-point additions differs).

export const RESIZE_RULE = 'center-square-crop+triangle-antialias-v1';
/** Largest decoded image accepted, in pixels (same limit as moleport.preprocess.MAX_PIXELS). */
export const MAX_PIXELS = 64_000_000;
/** The shorter side must be at least this many pixels (moleport.preprocess.MIN_SIDE). */
export const MIN_SIDE = 32;

/** Raised for inputs the rule cannot handle; `message` is meant for people. */
export class PreprocessError extends Error {
  constructor(message) {
    super(message);
    this.name = 'PreprocessError';
  }
}

/** Round half up and clip to a uint8 level, exactly as numpy's clip(floor(v + 0.5), 0, 255). */
export function roundU8(v) {
  const r = Math.floor(v + 0.5);
  return r < 0 ? 0 : r > 255 ? 255 : r;
}

/** One channel value `c` with alpha `a` composited over white (both 0..255). */
export function compositeOverWhite(c, a) {
  return roundU8((c * a + 255 * (255 - a)) / 255);
}

let compositeLut = null;
/** 256*256 table: lut[a*256 + c] = compositeOverWhite(c, a). */
function compositeTable() {
  if (compositeLut === null) {
    compositeLut = new Uint8Array(65536);
    for (let a = 0; a < 256; a++) {
      for (let c = 0; c < 256; c++) compositeLut[a * 256 + c] = compositeOverWhite(c, a);
    }
  }
  return compositeLut;
}

function checkRgba(rgba, width, height) {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new PreprocessError(`invalid image size ${width}x${height}`);
  }
  if (!rgba || rgba.length !== width * height * 4) {
    throw new PreprocessError(
      `RGBA buffer has ${rgba ? rgba.length : 0} bytes, expected ${width}*${height}*4 = ${width * height * 4}`);
  }
}

/** RGBA (Uint8Array / Uint8ClampedArray, row-major) -> RGB Uint8Array, alpha over white. */
export function rgbaToRgb(rgba, width, height) {
  checkRgba(rgba, width, height);
  const lut = compositeTable();
  const n = width * height;
  const rgb = new Uint8Array(n * 3);
  for (let p = 0; p < n; p++) {
    const a = rgba[p * 4 + 3] * 256;
    rgb[p * 3] = lut[a + rgba[p * 4]];
    rgb[p * 3 + 1] = lut[a + rgba[p * 4 + 1]];
    rgb[p * 3 + 2] = lut[a + rgba[p * 4 + 2]];
  }
  return rgb;
}

/**
 * Apply an EXIF orientation (1..8) to RGBA pixels, as PIL's ImageOps.exif_transpose.
 * Browsers do this while decoding (createImageBitmap imageOrientation 'from-image');
 * this function serves raw pixels (tests, other decoders).
 */
export function orientRgba(rgba, width, height, orientation) {
  checkRgba(rgba, width, height);
  if (!Number.isInteger(orientation) || orientation < 1 || orientation > 8) {
    throw new PreprocessError(`EXIF orientation must be 1..8, got ${orientation}`);
  }
  if (orientation === 1) return { data: rgba, width, height };
  const swap = orientation >= 5;
  const W = swap ? height : width;
  const H = swap ? width : height;
  const out = new Uint8Array(W * H * 4);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      let sx;
      let sy;
      switch (orientation) {
        case 2: sx = width - 1 - x; sy = y; break; // mirror horizontal
        case 3: sx = width - 1 - x; sy = height - 1 - y; break; // rotate 180
        case 4: sx = x; sy = height - 1 - y; break; // mirror vertical
        case 5: sx = y; sy = x; break; // transpose
        case 6: sx = y; sy = height - 1 - x; break; // rotate 90 clockwise
        case 7: sx = width - 1 - y; sy = height - 1 - x; break; // transverse
        default: sx = width - 1 - y; sy = x; break; // 8: rotate 90 counter-clockwise
      }
      const s = (sy * width + sx) * 4;
      const d = (y * W + x) * 4;
      out[d] = rgba[s];
      out[d + 1] = rgba[s + 1];
      out[d + 2] = rgba[s + 2];
      out[d + 3] = rgba[s + 3];
    }
  }
  return { data: out, width: W, height: H };
}

/** The canonical crop: the centred square {x0, y0, size}. */
export function centreSquare(width, height) {
  const size = Math.min(width, height);
  return { x0: Math.floor((width - size) / 2), y0: Math.floor((height - size) / 2), size };
}

/**
 * A user-chosen square, made valid: integer, at least `minSize` (or the shorter side if smaller),
 * inside the image. `cx`, `cy` are the centre in pixels; returns {x0, y0, size}.
 */
export function squareAround(width, height, cx, cy, size, minSize = MIN_SIDE) {
  const maxSize = Math.min(width, height);
  let s = Math.round(size);
  if (!Number.isFinite(s)) s = maxSize;
  s = Math.max(Math.min(s, maxSize), Math.min(minSize, maxSize));
  let x0 = Math.round(cx - s / 2);
  let y0 = Math.round(cy - s / 2);
  x0 = Math.max(0, Math.min(x0, width - s));
  y0 = Math.max(0, Math.min(y0, height - s));
  return { x0, y0, size: s };
}

/**
 * numpy's float64 sum (pairwise summation, 8-way unrolled, blocks of 128), so that the
 * filter weights are normalised bit-for-bit as in Python.
 */
export function numpySum(a, start = 0, n = a.length - start) {
  if (n < 8) {
    let res = 0;
    for (let i = 0; i < n; i++) res += a[start + i];
    return res;
  }
  if (n <= 128) {
    const r = new Float64Array(8);
    for (let j = 0; j < 8; j++) r[j] = a[start + j];
    let i = 8;
    for (; i < n - (n % 8); i += 8) {
      for (let j = 0; j < 8; j++) r[j] += a[start + i + j];
    }
    let res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; i++) res += a[start + i];
    return res;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return numpySum(a, start, n2) + numpySum(a, start + n2, n - n2);
}

const weightCache = new Map();

/**
 * Sparse triangle-filter weights for resizing `inSize` samples to `outSize`:
 * {lo: Int32Array, hi: Int32Array, offset: Int32Array, w: Float64Array}; output i uses inputs
 * lo[i]..hi[i]-1 with weights w[offset[i] + (j - lo[i])]. Same formula as moleport.preprocess.triangle_weights.
 */
export function triangleWeights(inSize, outSize) {
  if (!Number.isInteger(inSize) || !Number.isInteger(outSize) || inSize < 1 || outSize < 1) {
    throw new PreprocessError(`invalid resize ${inSize} -> ${outSize}`);
  }
  const key = `${inSize}:${outSize}`;
  const cached = weightCache.get(key);
  if (cached) return cached;
  const scale = inSize / outSize;
  const fs = Math.max(scale, 1.0);
  const lo = new Int32Array(outSize);
  const hi = new Int32Array(outSize);
  const offset = new Int32Array(outSize + 1);
  const rows = [];
  for (let i = 0; i < outSize; i++) {
    const c = (i + 0.5) * scale;
    lo[i] = Math.max(Math.floor(c - fs + 0.5), 0);
    hi[i] = Math.min(Math.floor(c + fs + 0.5), inSize);
    const k = new Float64Array(Math.max(hi[i] - lo[i], 0));
    for (let j = lo[i]; j < hi[i]; j++) k[j - lo[i]] = Math.max(0.0, 1.0 - Math.abs((j - c + 0.5) / fs));
    const total = numpySum(k);
    if (!(total > 0)) throw new PreprocessError(`degenerate filter for ${inSize}->${outSize} at ${i}`);
    for (let t = 0; t < k.length; t++) k[t] /= total;
    rows.push(k);
    offset[i + 1] = offset[i] + k.length;
  }
  const w = new Float64Array(offset[outSize]);
  rows.forEach((k, i) => w.set(k, offset[i]));
  const result = { lo, hi, offset, w };
  if (weightCache.size > 32) weightCache.clear();
  weightCache.set(key, result);
  return result;
}

function checkCrop(crop, width, height) {
  const { x0, y0, size } = crop;
  if (![x0, y0, size].every(Number.isInteger) || size < 1 || x0 < 0 || y0 < 0 ||
      x0 + size > width || y0 + size > height) {
    throw new PreprocessError(`crop ${JSON.stringify(crop)} is not a square inside the ${width}x${height} image`);
  }
}

/**
 * Resize the square `crop` of an image to outSize x outSize x 3 uint8 (HWC, RGB).
 * `pixels` holds `channels` (3 = RGB, 4 = RGBA composited over white on the fly) bytes per pixel.
 */
export function resizeCrop(pixels, width, height, channels, crop, outSize) {
  if (channels !== 3 && channels !== 4) throw new PreprocessError(`channels must be 3 or 4, got ${channels}`);
  if (!pixels || pixels.length !== width * height * channels) {
    throw new PreprocessError(`pixel buffer has ${pixels ? pixels.length : 0} bytes, expected ${width * height * channels}`);
  }
  checkCrop(crop, width, height);
  const { x0, y0, size: s } = crop;
  const { lo, hi, offset, w } = triangleWeights(s, outSize);
  const lut = channels === 4 ? compositeTable() : null;
  // Crop rows as RGB float64, then the horizontal pass: s rows x outSize x 3, rounded to uint8.
  const row = new Float64Array(s * 3);
  const horiz = new Uint8Array(s * outSize * 3);
  for (let y = 0; y < s; y++) {
    let src = ((y0 + y) * width + x0) * channels;
    for (let x = 0; x < s; x++, src += channels) {
      if (lut) {
        const a = pixels[src + 3] * 256;
        row[x * 3] = lut[a + pixels[src]];
        row[x * 3 + 1] = lut[a + pixels[src + 1]];
        row[x * 3 + 2] = lut[a + pixels[src + 2]];
      } else {
        row[x * 3] = pixels[src];
        row[x * 3 + 1] = pixels[src + 1];
        row[x * 3 + 2] = pixels[src + 2];
      }
    }
    const dst = y * outSize * 3;
    for (let i = 0; i < outSize; i++) {
      let r = 0;
      let g = 0;
      let b = 0;
      for (let j = lo[i], t = offset[i]; j < hi[i]; j++, t++) {
        const wt = w[t];
        r += row[j * 3] * wt;
        g += row[j * 3 + 1] * wt;
        b += row[j * 3 + 2] * wt;
      }
      horiz[dst + i * 3] = roundU8(r);
      horiz[dst + i * 3 + 1] = roundU8(g);
      horiz[dst + i * 3 + 2] = roundU8(b);
    }
  }
  // Vertical pass: outSize x outSize x 3, rounded to uint8.
  const out = new Uint8Array(outSize * outSize * 3);
  const stride = outSize * 3;
  for (let p = 0; p < outSize; p++) {
    for (let q = 0; q < stride; q++) {
      let acc = 0;
      for (let j = lo[p], t = offset[p]; j < hi[p]; j++, t++) acc += horiz[j * stride + q] * w[t];
      out[p * stride + q] = roundU8(acc);
    }
  }
  return out;
}

/** Check size limits of a decoded image; throws PreprocessError with a readable message. */
export function checkImageSize(width, height, { maxPixels = MAX_PIXELS, minSide = MIN_SIDE } = {}) {
  if (width * height > maxPixels) {
    throw new PreprocessError(
      `image too large: ${width}x${height} = ${(width * height / 1e6).toFixed(1)} megapixels; ` +
      `the limit is ${(maxPixels / 1e6).toFixed(0)} megapixels`);
  }
  if (Math.min(width, height) < minSide) {
    throw new PreprocessError(`image too small (${width}x${height}); the shorter side must be at least ${minSide} px`);
  }
}

/**
 * The model input for RGBA pixels (e.g. canvas ImageData.data): size x size x 3 uint8, HWC RGB.
 * `crop` defaults to the centre square.
 */
export function preprocessRgba(rgba, width, height, { size = 224, crop = null } = {}) {
  checkRgba(rgba, width, height);
  checkImageSize(width, height);
  return resizeCrop(rgba, width, height, 4, crop ?? centreSquare(width, height), size);
}

/** Same for RGB pixels (3 bytes per pixel). */
export function preprocessRgb(rgb, width, height, { size = 224, crop = null } = {}) {
  checkImageSize(width, height);
  return resizeCrop(rgb, width, height, 3, crop ?? centreSquare(width, height), size);
}

/** Colour-constancy rules the exporter implements inside the graph (moleport.spec.COLOR_CONSTANCY_RULES). */
export const IN_GRAPH_COLOR_CONSTANCY = ['shades-of-gray-p6'];
/** Test-time augmentation rules the exporter averages inside the graph (moleport.spec.TTA_RULES). */
export const IN_GRAPH_TTA = ['flips2', 'flips4', 'dihedral8'];

/**
 * Check that a ModelSpec (spec.json) describes an input this code produces; returns
 * {size, threshold, melanomaIndex, labels}.
 */
export function checkSpec(spec) {
  if (!spec || typeof spec !== 'object') throw new PreprocessError('spec.json is not a JSON object');
  if (spec.resize_rule !== RESIZE_RULE) {
    throw new PreprocessError(`spec.json asks for resize rule "${spec.resize_rule}"; this page implements "${RESIZE_RULE}"`);
  }
  const labels = spec.labels;
  if (!Array.isArray(labels) || labels.length !== 2 || !labels.includes('melanoma')) {
    throw new PreprocessError(`spec.json labels must be two names including "melanoma", got ${JSON.stringify(labels)}`);
  }
  const threshold = Number(spec.threshold);
  if (!(threshold >= 0 && threshold <= 1)) throw new PreprocessError(`spec.json threshold must be in [0, 1], got ${spec.threshold}`);
  const size = Number(spec.input_size);
  if (!Number.isInteger(size) || size < 32) throw new PreprocessError(`spec.json input_size must be an integer >= 32, got ${spec.input_size}`);
  // Colour constancy and temperature run inside the exported graph; refuse a rule it does not implement.
  const constancy = spec.color_constancy ?? null;
  if (constancy !== null && !IN_GRAPH_COLOR_CONSTANCY.includes(constancy)) {
    throw new PreprocessError(`spec.json color_constancy "${constancy}" is not a rule the exported graph implements (${IN_GRAPH_COLOR_CONSTANCY.join(', ')})`);
  }
  const tta = spec.tta ?? null;
  if (tta !== null && !IN_GRAPH_TTA.includes(tta)) {
    throw new PreprocessError(`spec.json tta "${tta}" is not a test-time augmentation the exported graph implements (${IN_GRAPH_TTA.join(', ')})`);
  }
  const temperature = spec.temperature ?? 1;
  if (!(typeof temperature === 'number' && temperature >= 0.01 && temperature <= 100)) {
    throw new PreprocessError(`spec.json temperature must be a number within [0.01, 100], got ${JSON.stringify(spec.temperature)}`);
  }
  const exportColour = spec.export_input && spec.export_input.color_order;
  if (exportColour && exportColour !== 'RGB') {
    throw new PreprocessError(`the artifact expects ${exportColour} pixels; this page feeds RGB`);
  }
  return { size, threshold, melanomaIndex: labels.indexOf('melanoma'), labels };
}

/** uint8 HWC pixels -> float32 values 0..255 (the fp32 artifacts normalise inside the graph). */
export function toFloat32(u8) {
  return Float32Array.from(u8);
}

/**
 * uint8 pixels -> int8 input of a quantised artifact: q = round(x / scale) + zero_point,
 * rounding half away from zero (x >= 0 here) as TFLite does, clipped to [-128, 127].
 */
export function quantizeInt8(u8, scale, zeroPoint) {
  if (!(scale > 0)) throw new PreprocessError(`int8 input needs a positive quantisation scale, got ${scale}`);
  const out = new Int8Array(u8.length);
  for (let i = 0; i < u8.length; i++) {
    const q = Math.floor(u8[i] / scale + 0.5) + zeroPoint;
    out[i] = q < -128 ? -128 : q > 127 ? 127 : q;
  }
  return out;
}

/** The risk band shown for P(melanoma) at the spec's threshold. */
export function riskBand(pMelanoma, threshold) {
  if (!Number.isFinite(pMelanoma)) throw new PreprocessError(`P(melanoma) is not a number: ${pMelanoma}`);
  const above = pMelanoma >= threshold;
  return {
    band: above ? 'higher' : 'lower',
    label: above ? 'melanoma' : 'nevus',
    text: above
      ? `At or above the model's threshold (${threshold.toFixed(3)}): melanoma-like features`
      : `Below the model's threshold (${threshold.toFixed(3)}): nevus-like features`,
  };
}
