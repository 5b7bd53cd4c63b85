import { FormatError } from '@kiln/core';
import { gunzipSync } from 'node:zlib';

/** One idx file (the MNIST container): its dimensions and its uint8 values in row-major order. */
export interface IdxArray {
  /** Sizes from the header, e.g. [60000, 28, 28] for an images file, [60000] for labels. */
  shape: number[];
  data: Uint8Array;
}

const GZIP_MAGIC = [0x1f, 0x8b];

/**
 * Parses an idx file (LeCun's MNIST format, gzipped or not): a big-endian
 * magic `0x00 0x00 <type> <rank>`, `rank` big-endian uint32 sizes, then the
 * values. Only type 0x08 (unsigned byte), the one Fashion-MNIST uses, is
 * accepted.
 * @param source names the file in error messages.
 * @throws FormatError on a bad magic, an unsupported type or a size that does not match the bytes.
 */
export function parseIdx(bytes: Uint8Array, source = 'idx file'): IdxArray {
  let raw = bytes;
  if (bytes[0] === GZIP_MAGIC[0] && bytes[1] === GZIP_MAGIC[1]) {
    try {
      raw = new Uint8Array(gunzipSync(bytes));
    } catch (e) {
      throw new FormatError('parseIdx', `${source}: gzip stream is corrupt (${(e as Error).message})`);
    }
  }
  if (raw.length < 4 || raw[0] !== 0 || raw[1] !== 0) throw new FormatError('parseIdx', `${source}: expected the idx magic 00 00 <type> <rank>, got ${hex(raw.subarray(0, 4))}`);
  if (raw[2] !== 0x08) throw new FormatError('parseIdx', `${source}: expected value type 0x08 (uint8), got 0x${raw[2]!.toString(16).padStart(2, '0')}`);
  const rank = raw[3]!;
  if (rank < 1) throw new FormatError('parseIdx', `${source}: expected rank >= 1, got 0`);
  const header = 4 + 4 * rank;
  if (raw.length < header) throw new FormatError('parseIdx', `${source}: header needs ${header} bytes, file has ${raw.length}`);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const shape = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i, false));
  const count = shape.reduce((a, b) => a * b, 1);
  if (raw.length - header !== count) {
    throw new FormatError('parseIdx', `${source}: header says [${shape.join(', ')}] = ${count} values, file holds ${raw.length - header}`);
  }
  return { shape, data: raw.subarray(header) };
}

const hex = (b: Uint8Array) => [...b].map((v) => v.toString(16).padStart(2, '0')).join(' ');
