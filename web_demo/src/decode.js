// Browser decoding: File/Blob or camera frame -> RGBA pixels, with clear refusals.
// createImageBitmap with colorSpaceConversion 'none' and premultiplyAlpha 'none' is lossless for
// RGB PNGs; EXIF orientation is applied ('from-image'), as moleport.preprocess does.
import { sniffImage, SNIFF_BYTES } from './imageinfo.js';
import { checkImageSize, PreprocessError, MAX_PIXELS, MIN_SIDE } from './preprocess.js';

export class ImageInputError extends Error {
  constructor(message, cause) {
    super(message);
    this.name = 'ImageInputError';
    if (cause) this.cause = cause;
  }
}

function sizeCheck(name, width, height, limits) {
  try {
    checkImageSize(width, height, limits);
  } catch (err) {
    if (err instanceof PreprocessError) throw new ImageInputError(`"${name}": ${err.message}.`);
    throw err;
  }
}

/** RGBA pixels of a drawable (ImageBitmap, video) of the given size. */
export function readPixels(source, width, height) {
  const canvas = typeof OffscreenCanvas !== 'undefined'
    ? new OffscreenCanvas(width, height)
    : Object.assign(document.createElement('canvas'), { width, height });
  const ctx = canvas.getContext('2d', { willReadFrequently: true, colorSpace: 'srgb', alpha: true });
  if (!ctx) throw new ImageInputError(`cannot allocate a ${width}x${height} canvas (out of memory?)`);
  ctx.clearRect(0, 0, width, height);
  ctx.drawImage(source, 0, 0);
  const imageData = ctx.getImageData(0, 0, width, height, { colorSpace: 'srgb' });
  return imageData.data;
}

/**
 * Decode a File/Blob: {bitmap, rgba, width, height, format}. Throws ImageInputError with a message
 * for people: not an image, too large (checked on the declared size before decoding), too small, corrupt.
 */
export async function decodeImageFile(file, { maxPixels = MAX_PIXELS, minSide = MIN_SIDE } = {}) {
  const name = file.name || 'image';
  if (!file.size) throw new ImageInputError(`"${name}" is empty (0 bytes).`);
  const head = new Uint8Array(await file.slice(0, SNIFF_BYTES).arrayBuffer());
  const info = sniffImage(head);
  if (!info) {
    throw new ImageInputError(`"${name}" is not an image this page can read ` +
      `(${file.type || 'unknown type'}); use a PNG or JPEG photo.`);
  }
  if (info.width !== null && info.height !== null) sizeCheck(name, info.width, info.height, { maxPixels, minSide });
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, {
      imageOrientation: 'from-image', premultiplyAlpha: 'none', colorSpaceConversion: 'none',
    });
  } catch (err) {
    throw new ImageInputError(`"${name}" could not be decoded as ${info.format.toUpperCase()} ` +
      `(corrupt, truncated or unsupported by this browser).`, err);
  }
  try {
    sizeCheck(name, bitmap.width, bitmap.height, { maxPixels, minSide });
  } catch (err) {
    bitmap.close();
    throw err;
  }
  let rgba;
  try {
    rgba = readPixels(bitmap, bitmap.width, bitmap.height);
  } catch (err) {
    bitmap.close();
    if (err instanceof ImageInputError) throw err;
    throw new ImageInputError(`"${name}" could not be read (${err.message || err}).`, err);
  }
  return { bitmap, rgba, width: bitmap.width, height: bitmap.height, format: info.format };
}

/** The current frame of a playing <video> (camera): {bitmap, rgba, width, height, format}. */
export async function captureVideoFrame(video) {
  const width = video.videoWidth;
  const height = video.videoHeight;
  if (!width || !height) throw new ImageInputError('the camera has not delivered a frame yet; try again.');
  sizeCheck('camera frame', width, height, {});
  const bitmap = await createImageBitmap(video);
  const rgba = readPixels(bitmap, width, height);
  return { bitmap, rgba, width, height, format: 'camera' };
}
