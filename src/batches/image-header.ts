// Identifies an image from its first bytes: media type and pixel dimensions of PNG, JPEG, GIF and WebP.
// Pure (no I/O): the ingest handler reads the origin, this decides whether the bytes are an image.
//
// Why not the `image-size` package (2.1.0, tried): it knows our four formats, but its DataViews start at
// the input's byteOffset and ignore its byteLength, so a header cut short inside a larger buffer (a
// subarray of a read buffer, a small Buffer from Node's shared pool) is "identified" from whatever bytes
// follow it. Using it safely would mean copying every body first, and catching its untyped throws
// (RangeError, TypeError) as "no image". This file stays within the view it is given.

export type ImageMediaType = 'image/png' | 'image/jpeg' | 'image/gif' | 'image/webp';

export interface ImageHeader {
  mediaType: ImageMediaType;
  width: number;
  height: number;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function startsWith(buf: Uint8Array, bytes: number[], at = 0): boolean {
  if (buf.length < at + bytes.length) return false;
  return bytes.every((b, i) => buf[at + i] === b);
}

function ascii(buf: Uint8Array, at: number, length: number): string {
  return Buffer.from(buf.buffer, buf.byteOffset + at, Math.min(length, buf.length - at)).toString('latin1');
}

function view(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** PNG: the IHDR chunk must come first, right after the signature. */
function png(buf: Uint8Array): ImageHeader | undefined {
  if (!startsWith(buf, PNG_SIGNATURE) || buf.length < 24 || ascii(buf, 12, 4) !== 'IHDR') return undefined;
  const v = view(buf);
  return { mediaType: 'image/png', width: v.getUint32(16), height: v.getUint32(20) };
}

function gif(buf: Uint8Array): ImageHeader | undefined {
  const magic = ascii(buf, 0, 6);
  if ((magic !== 'GIF87a' && magic !== 'GIF89a') || buf.length < 10) return undefined;
  const v = view(buf);
  return { mediaType: 'image/gif', width: v.getUint16(6, true), height: v.getUint16(8, true) };
}

/** Start-of-frame markers (baseline, progressive, lossless, ...); 0xC4, 0xC8 and 0xCC are not frames. */
function isStartOfFrame(marker: number): boolean {
  return marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
}

/** JPEG: walks the marker segments to the first start-of-frame, which holds height then width. */
function jpeg(buf: Uint8Array): ImageHeader | undefined {
  if (!startsWith(buf, [0xff, 0xd8, 0xff])) return undefined;
  const v = view(buf);
  let at = 2;
  while (at + 4 <= buf.length) {
    if (buf[at] !== 0xff) return undefined;
    const marker = buf[at + 1]!;
    // Fill bytes and parameterless markers (RSTn, TEM) carry no length.
    if (marker === 0xff) {
      at += 1;
      continue;
    }
    if ((marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) {
      at += 2;
      continue;
    }
    const length = v.getUint16(at + 2);
    if (length < 2) return undefined;
    if (isStartOfFrame(marker)) {
      if (at + 9 > buf.length) return undefined;
      return { mediaType: 'image/jpeg', height: v.getUint16(at + 5), width: v.getUint16(at + 7) };
    }
    if (marker === 0xd9 || marker === 0xda) return undefined; // end of image or scan data before a frame
    at += 2 + length;
  }
  return undefined;
}

/** WebP: a RIFF container whose first chunk is VP8 (lossy), VP8L (lossless) or VP8X (extended). */
function webp(buf: Uint8Array): ImageHeader | undefined {
  if (ascii(buf, 0, 4) !== 'RIFF' || ascii(buf, 8, 4) !== 'WEBP' || buf.length < 30) return undefined;
  const v = view(buf);
  const chunk = ascii(buf, 12, 4);
  if (chunk === 'VP8 ') {
    if (!startsWith(buf, [0x9d, 0x01, 0x2a], 23)) return undefined;
    return {
      mediaType: 'image/webp',
      width: v.getUint16(26, true) & 0x3fff,
      height: v.getUint16(28, true) & 0x3fff,
    };
  }
  if (chunk === 'VP8L') {
    if (buf[20] !== 0x2f) return undefined;
    const bits = v.getUint32(21, true);
    return { mediaType: 'image/webp', width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
  }
  if (chunk === 'VP8X') {
    const w = buf[24]! | (buf[25]! << 8) | (buf[26]! << 16);
    const h = buf[27]! | (buf[28]! << 8) | (buf[29]! << 16);
    return { mediaType: 'image/webp', width: w + 1, height: h + 1 };
  }
  return undefined;
}

/** The image's type and dimensions, or undefined when the bytes are no image this parser knows. */
export function identifyImage(buf: Uint8Array): ImageHeader | undefined {
  const found = png(buf) ?? jpeg(buf) ?? gif(buf) ?? webp(buf);
  if (!found || found.width < 1 || found.height < 1) return undefined;
  return found;
}
