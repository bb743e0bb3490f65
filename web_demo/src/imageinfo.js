// Image format and declared size from a file's first bytes, before any decoding: so that a
// text file or a decompression bomb (e.g. a PNG declaring 12000x12000) is refused with a clear
// message instead of being handed to the browser's decoder. Pure; works in Node too.

/** How many leading bytes `sniffImage` wants (JPEG headers can follow large EXIF blocks). */
export const SNIFF_BYTES = 512 * 1024;

const u16be = (b, o) => (b[o] << 8) | b[o + 1];
const u16le = (b, o) => b[o] | (b[o + 1] << 8);
const u24le = (b, o) => b[o] | (b[o + 1] << 8) | (b[o + 2] << 16);
const u32be = (b, o) => ((b[o] << 24) >>> 0) + (b[o + 1] << 16) + (b[o + 2] << 8) + b[o + 3];
const i32le = (b, o) => b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24);
const ascii = (b, o, n) => String.fromCharCode(...b.subarray(o, o + n));

function jpegSize(b) {
  let o = 2;
  while (o + 9 < b.length) {
    if (b[o] !== 0xff) return null; // not at a marker: corrupt
    const marker = b[o + 1];
    if (marker === 0xff) { o += 1; continue; } // fill byte
    if (marker === 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) { o += 2; continue; }
    const len = u16be(b, o + 2);
    const isSof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isSof) return { height: u16be(b, o + 5), width: u16be(b, o + 7) };
    if (marker === 0xda || len < 2) return null; // start of scan before a frame header
    o += 2 + len;
  }
  return null;
}

function webpSize(b) {
  const chunk = ascii(b, 12, 4);
  if (chunk === 'VP8X' && b.length >= 30) return { width: u24le(b, 24) + 1, height: u24le(b, 27) + 1 };
  if (chunk === 'VP8L' && b.length >= 25 && b[20] === 0x2f) {
    const bits = b[21] | (b[22] << 8) | (b[23] << 16) | (b[24] << 24);
    return { width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
  }
  if (chunk === 'VP8 ' && b.length >= 30) return { width: u16le(b, 26) & 0x3fff, height: u16le(b, 28) & 0x3fff };
  return null;
}

/**
 * {format, width, height} from the leading bytes of a file; width/height are null when the
 * format is known but its header does not say (or is cut short). Returns null for anything that
 * is not a PNG, JPEG, GIF, WebP, BMP, AVIF or HEIC image.
 */
export function sniffImage(bytes) {
  const b = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const dims = (format, wh) => ({ format, width: wh ? wh.width : null, height: wh ? wh.height : null });
  if (b.length >= 8 && b[0] === 0x89 && ascii(b, 1, 3) === 'PNG' && b[4] === 0x0d && b[5] === 0x0a) {
    const ok = b.length >= 24 && ascii(b, 12, 4) === 'IHDR';
    return dims('png', ok ? { width: u32be(b, 16), height: u32be(b, 20) } : null);
  }
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return dims('jpeg', jpegSize(b));
  if (b.length >= 6 && (ascii(b, 0, 6) === 'GIF87a' || ascii(b, 0, 6) === 'GIF89a')) {
    return dims('gif', b.length >= 10 ? { width: u16le(b, 6), height: u16le(b, 8) } : null);
  }
  if (b.length >= 16 && ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 4) === 'WEBP') return dims('webp', webpSize(b));
  if (b.length >= 26 && ascii(b, 0, 2) === 'BM') {
    return dims('bmp', { width: Math.abs(i32le(b, 18)), height: Math.abs(i32le(b, 22)) });
  }
  if (b.length >= 12 && ascii(b, 4, 4) === 'ftyp') {
    const brand = ascii(b, 8, 4);
    if (brand === 'avif' || brand === 'avis') return dims('avif', null);
    if (['heic', 'heix', 'mif1', 'msf1', 'hevc'].includes(brand)) return dims('heic', null);
  }
  return null;
}
