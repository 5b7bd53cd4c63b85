import { decode as decodePngData, type DecodedPng } from 'fast-png';
import { Unzlib } from 'fflate';
import jpeg from 'jpeg-js';
import { FormatError } from '@kiln/core';
import type { RgbImage } from './image.js';
import { canConvertLikeLibjpeg, libjpegColor, readJpegLayout, type JpegLayout } from './jpeg-color.js';

/**
 * PNG and JPEG decoding to RGB, matching what `Image.open(f).convert('RGB')`
 * gives in Pillow: grey is replicated, alpha is dropped (not composited),
 * palettes are looked up, 1/2/4-bit grey is scaled like PIL's unpackers.
 * PNG output equals PIL's byte for byte: fast-png (pure TypeScript, no Node
 * built-ins) inflates and unfilters, and the conversion to RGB below follows
 * PIL. Interlaced PNGs below 8 bits per sample are rejected: fast-png's Adam7
 * path assumes whole-byte pixels. JPEG entropy decoding and IDCT are
 * jpeg-js's; for ordinary YCbCr files chroma upsampling and colour conversion
 * are redone the way libjpeg-turbo does them (jpeg-color.ts), leaving only
 * IDCT rounding differences of about a level (measured in
 * test/preprocess.test.ts). Other JPEGs (CMYK, Adobe-marked) use jpeg-js's
 * own conversion and differ more.
 *
 * Works on `Uint8Array` alone (no `Buffer`), so it runs in a browser as in Node.
 *
 * Hostile input: the pixel count is checked from the header before anything
 * is allocated, PNG data is first inflated as a stream that is counted, not
 * kept, and stopped one byte past the size the header implies (it must reach
 * that size exactly), so a forged header or a zlib bomb costs neither memory
 * nor time beyond the limit; jpeg-js gets its resolution and memory caps.
 * Every failure is a FormatError (test/decode.fuzz.test.ts mutates thousands
 * of files to hold it to that).
 */

const OP = 'decodeImage';

/** Options for {@link decodeImage}. */
export interface DecodeOptions {
  /** Largest width x height accepted. Default 89,478,485, Pillow's MAX_IMAGE_PIXELS. */
  maxPixels?: number;
  /** jpeg-js's cap on its working memory, in MB. Default 512. */
  maxMemoryMB?: number;
}

/** A decoded image and the container it came from. */
export interface DecodedImage extends RgbImage {
  /** The container the bytes were, recognised by its magic bytes. */
  format: 'png' | 'jpeg';
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/**
 * Decodes a PNG or JPEG (recognised by its magic bytes, not a file name) to RGB.
 * @throws FormatError for other formats, malformed files, or images larger than `maxPixels`.
 */
export function decodeImage(bytes: Uint8Array, opts: DecodeOptions = {}): DecodedImage {
  const maxPixels = opts.maxPixels ?? 89_478_485;
  if (PNG_SIGNATURE.every((b, i) => bytes[i] === b)) return decodePng(bytes, maxPixels);
  if (bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return decodeJpeg(bytes, maxPixels, opts.maxMemoryMB ?? 512);
  throw new FormatError(OP, `unsupported image format (${sniff(bytes)}); expected PNG or JPEG`);
}

function sniff(b: Uint8Array): string {
  const ascii = (from: number, to: number) => String.fromCharCode(...b.subarray(from, to));
  if (b.length === 0) return 'empty input';
  if (ascii(0, 4) === 'GIF8') return 'GIF';
  if (ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') return 'WebP';
  if (ascii(0, 2) === 'BM') return 'BMP';
  return `first bytes ${Array.from(b.subarray(0, 4), (x) => x.toString(16).padStart(2, '0')).join(' ')}`;
}

interface Chunk {
  type: string;
  start: number; // offset of the length field
  end: number; // offset after the CRC
}

function pngChunks(bytes: Uint8Array): Chunk[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const chunks: Chunk[] = [];
  let pos = 8;
  while (pos + 12 <= bytes.length) {
    const length = view.getUint32(pos);
    const type = String.fromCharCode(...bytes.subarray(pos + 4, pos + 8));
    const end = pos + 12 + length;
    if (end > bytes.length) throw new FormatError(OP, `PNG chunk '${type}' runs past the end of the file (truncated PNG?)`);
    chunks.push({ type, start: pos, end });
    pos = end;
    if (type === 'IEND') break;
  }
  return chunks;
}

function decodePng(bytes: Uint8Array, maxPixels: number): DecodedImage {
  const chunks = pngChunks(bytes);
  const ihdr = chunks[0];
  if (!ihdr || ihdr.type !== 'IHDR' || ihdr.end - ihdr.start !== 25) throw new FormatError(OP, 'PNG does not start with a valid IHDR chunk');
  const view = new DataView(bytes.buffer, bytes.byteOffset + ihdr.start + 8, 13);
  const width = view.getUint32(0);
  const height = view.getUint32(4);
  const [depth, colorType, , , interlace] = [8, 9, 10, 11, 12].map((i) => view.getUint8(i)) as [number, number, number, number, number];
  checkPixels(width, height, maxPixels);
  if (!chunks.some((c) => c.type === 'IEND')) throw new FormatError(OP, 'PNG has no IEND chunk (truncated PNG?)');

  if (interlace && depth < 8) throw new FormatError(OP, `interlaced PNGs with ${depth}-bit samples are not supported (only 8 and 16 bits when interlaced)`);

  // fast-png inflates without an output cap: check the stream expands to
  // exactly what the header implies before handing it over.
  const idat = concat(chunks.filter((c) => c.type === 'IDAT').map((c) => bytes.subarray(c.start + 8, c.end - 4)));
  const bitsPerPixel = depth * channelsOf(colorType);
  const expected = interlace ? interlacedSize(width, height, bitsPerPixel) : height * (1 + Math.ceil((width * bitsPerPixel) / 8));
  const inflated = inflatedSize(idat, expected);
  if (inflated < expected) throw new FormatError(OP, `PNG image data inflates to ${inflated} bytes, short of the ${expected} its header implies (truncated PNG?)`);

  let png: DecodedPng;
  try {
    png = decodePngData(bytes, { checkCrc: true });
  } catch (e) {
    const cause = (e as Error & { cause?: Error }).cause;
    throw new FormatError(OP, `malformed PNG (${(e as Error).message}${cause ? `: ${cause.message}` : ''})`);
  }
  if (png.width !== width || png.height !== height) throw new FormatError(OP, `PNG decoder produced ${png.width}x${png.height}, the header says ${width}x${height}`);
  return { format: 'png', width, height, data: pngToRgb(png, colorType) };
}

/**
 * PIL's `convert('RGB')` of fast-png's raw samples: grey replicated, alpha
 * dropped (tRNS colour keys too: PIL keeps those pixels' colour), palette
 * looked up, 1/2/4-bit grey scaled to 0..255 as PIL's unpackers do.
 * 16-bit: PIL keeps the high byte for RGB(A)/LA, but opens 16-bit grey as
 * mode 'I', whose RGB conversion clips at 255.
 */
function pngToRgb(png: DecodedPng, colorType: number): Uint8Array {
  const { width, height, depth, channels } = png;
  const n = width * height;
  const samples = depth < 8 ? unpackRows(png.data as Uint8Array, width * channels, height, depth) : png.data;
  if (samples.length < n * channels) throw new FormatError(OP, `PNG decoder returned ${samples.length} samples, expected ${n * channels}`);
  const out = new Uint8Array(n * 3);
  if (colorType === 3) {
    const palette = png.palette ?? [];
    for (let p = 0; p < n; p++) {
      const entry = palette[samples[p]!];
      if (!entry) throw new FormatError(OP, `PNG pixel ${p} uses palette index ${samples[p]}, past the ${palette.length}-entry palette`);
      out[3 * p] = entry[0]!;
      out[3 * p + 1] = entry[1]!;
      out[3 * p + 2] = entry[2]!;
    }
    return out;
  }
  const level =
    depth === 16
      ? colorType === 0
        ? (v: number) => Math.min(v, 255)
        : (v: number) => v >> 8
      : depth < 8
        ? (v: number) => (v * 255) / ((1 << depth) - 1)
        : (v: number) => v;
  const colour = colorType === 2 || colorType === 6;
  for (let p = 0, i = 0; p < n; p++, i += channels) {
    if (colour) {
      out[3 * p] = level(samples[i]!);
      out[3 * p + 1] = level(samples[i + 1]!);
      out[3 * p + 2] = level(samples[i + 2]!);
    } else {
      out[3 * p] = out[3 * p + 1] = out[3 * p + 2] = level(samples[i]!);
    }
  }
  return out;
}

/** Sub-byte samples, MSB first, each row padded to a whole byte (PNG's packing), one sample per byte. */
function unpackRows(packed: Uint8Array, samplesPerRow: number, rows: number, depth: number): Uint8Array {
  const out = new Uint8Array(samplesPerRow * rows);
  const rowBytes = Math.ceil((samplesPerRow * depth) / 8);
  const mask = (1 << depth) - 1;
  for (let y = 0; y < rows; y++) {
    for (let x = 0; x < samplesPerRow; x++) {
      const bit = x * depth;
      const byte = packed[y * rowBytes + (bit >> 3)]!;
      out[y * samplesPerRow + x] = (byte >> (8 - depth - (bit & 7))) & mask;
    }
  }
  return out;
}

function decodeJpeg(bytes: Uint8Array, maxPixels: number, maxMemoryMB: number): DecodedImage {
  const layout = readJpegLayout(bytes);
  // Checked before jpeg-js sees the file: it allocates for the declared frame before reading any data.
  if (!layout) throw new FormatError(OP, 'JPEG has no readable frame header (SOF) before its first scan (malformed or truncated JPEG?)');
  checkPixels(layout.width, layout.height, maxPixels);
  checkJpegDataSize(layout, bytes.length);
  const likeLibjpeg = canConvertLikeLibjpeg(layout);
  let img: { width: number; height: number; data: Uint8Array };
  try {
    img = jpeg.decode(bytes, {
      useTArray: true,
      formatAsRGBA: false,
      tolerantDecoding: false,
      colorTransform: likeLibjpeg ? false : undefined,
      maxResolutionInMP: maxPixels / 1e6,
      maxMemoryUsageInMB: maxMemoryMB,
    } as Parameters<typeof jpeg.decode>[1] & { useTArray: true });
  } catch (e) {
    throw new FormatError(OP, `malformed or oversized JPEG (${(e as Error).message})`);
  }
  checkPixels(img.width, img.height, maxPixels);
  if (img.data.length !== img.width * img.height * 3) throw new FormatError(OP, 'JPEG decoder returned an unexpected pixel layout');
  if (img.width !== layout.width || img.height !== layout.height) {
    throw new FormatError(OP, `JPEG frame header says ${layout.width}x${layout.height}, the decoder produced ${img.width}x${img.height}`);
  }
  const data = likeLibjpeg ? libjpegColor(img.data, layout) : img.data;
  return { format: 'jpeg', width: img.width, height: img.height, data };
}

/**
 * Bytes the zlib stream `data` inflates to, counted without keeping them;
 * throws as soon as the count passes `limit`. The input goes in 1 KiB
 * pieces (deflate expands a byte at most ~1032-fold), so the work done past
 * the limit is bounded by about a megabyte of output.
 */
function inflatedSize(data: Uint8Array, limit: number): number {
  let total = 0;
  const stream = new Unzlib((chunk) => {
    total += chunk.length;
  });
  const PIECE = 1024;
  for (let pos = 0; pos < data.length || pos === 0; pos += PIECE) {
    try {
      stream.push(data.subarray(pos, pos + PIECE), pos + PIECE >= data.length);
    } catch (e) {
      throw new FormatError(OP, `PNG image data is not a valid zlib stream (${(e as Error).message})`);
    }
    if (total > limit) throw new FormatError(OP, `PNG image data inflates past the ${limit} bytes its header implies`);
  }
  return total;
}

/**
 * Rejects a JPEG whose file is too small to hold the frame it declares (a
 * forged header, a truncated file): Huffman coding spends at least one bit
 * on every 8x8 block of every component (each block's DC coefficient is
 * coded, in baseline and progressive files alike), so the file needs at
 * least blocks / 8 bytes. Without this, a 600-byte file declaring 8000x8000
 * made jpeg-js allocate its 512 MB cap and spend half a minute before failing.
 */
function checkJpegDataSize(layout: JpegLayout, fileBytes: number): void {
  const { width, height, components } = layout;
  if (components.length === 0 || components.some((c) => c.h < 1 || c.h > 4 || c.v < 1 || c.v > 4)) {
    throw new FormatError(OP, `JPEG frame header has invalid sampling factors ${components.map((c) => `${c.h}x${c.v}`).join(', ') || '(no components)'}`);
  }
  const hMax = Math.max(...components.map((c) => c.h));
  const vMax = Math.max(...components.map((c) => c.v));
  let blocks = 0;
  for (const c of components) blocks += Math.ceil(Math.ceil((width * c.h) / hMax) / 8) * Math.ceil(Math.ceil((height * c.v) / vMax) / 8);
  const needed = Math.ceil(blocks / 8);
  if (fileBytes < needed) {
    throw new FormatError(OP, `JPEG declares ${width}x${height} (${blocks} blocks of 8x8), which needs at least ${needed} bytes of coded data, but the file is ${fileBytes} bytes (truncated JPEG or forged header?)`);
  }
}

function checkPixels(width: number, height: number, maxPixels: number): void {
  if (width < 1 || height < 1) throw new FormatError(OP, `image has an empty size ${width}x${height}`);
  if (width * height > maxPixels) throw new FormatError(OP, `image is ${width}x${height} = ${width * height} pixels, over the limit of ${maxPixels} (maxPixels)`);
}

function channelsOf(colorType: number): number {
  return { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }[colorType] ?? 4;
}

/** Bytes of filtered scanlines over the seven Adam7 passes. */
function interlacedSize(width: number, height: number, bitsPerPixel: number): number {
  const passes = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]] as const;
  let total = 0;
  for (const [x0, y0, dx, dy] of passes) {
    const w = Math.ceil((width - x0) / dx);
    const h = Math.ceil((height - y0) / dy);
    if (w > 0 && h > 0) total += h * (1 + Math.ceil((w * bitsPerPixel) / 8));
  }
  return total;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}
