// safetensors read and write for state dicts, self-contained (Kiln's other
// codec lives in @kiln/resnet, which depends on this package, not the
// reverse). Format: u64 LE header length N, N bytes of JSON
// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {...}},
// then each tensor's row-major little-endian bytes.
import { KilnError, fromArray, type DType, type Tensor } from '@kiln/core';
import type { StateDict } from './state-dict.js';

/** Thrown for a malformed safetensors file. */
export class SafetensorsError extends KilnError {
  override name = 'SafetensorsError';
}

const WRITE_NAMES: Record<DType, string> = { float32: 'F32', int32: 'I32', int8: 'I8', uint8: 'U8', bool: 'BOOL' };
const ITEM: Record<string, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };
const MAX_HEADER = 100_000_000;

/** Options of {@link saveSafetensors}. */
export interface SaveSafetensorsOptions {
  /** String metadata stored under `__metadata__`. */
  metadata?: Record<string, string>;
}

/**
 * Encodes a state dict as safetensors bytes (awaits each tensor's readback).
 * Keys keep their order; int32 tensors are written as I32.
 */
export async function saveSafetensors(stateDict: StateDict | Map<string, Tensor>, opts: SaveSafetensorsOptions = {}): Promise<Uint8Array> {
  const entries = stateDict instanceof Map ? [...stateDict] : Object.entries(stateDict);
  const header: Record<string, unknown> = {};
  if (opts.metadata) header.__metadata__ = opts.metadata;
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of entries) {
    const data = await t.toArray();
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
    header[name] = { dtype: WRITE_NAMES[t.dtype], shape: [...t.shape], data_offsets: [offset, offset + bytes.byteLength] };
    chunks.push(bytes);
    offset += bytes.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + json.length) % 8)) % 8); // data starts 8-byte aligned, as the reference writer pads
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.byteLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.byteLength), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.byteLength;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

/** Decodes one tensor's bytes into a Kiln host array and dtype (F16/BF16/F64 widen or narrow to float32, I64/I16 to int32). */
function decode(name: string, dtype: string, bytes: Uint8Array, n: number): { data: ArrayLike<number>; dtype: DType } {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const f32 = (get: (i: number) => number) => ({ data: Float32Array.from({ length: n }, (_, i) => get(i)), dtype: 'float32' as const });
  const i32 = (get: (i: number) => number) => ({ data: Int32Array.from({ length: n }, (_, i) => get(i)), dtype: 'int32' as const });
  switch (dtype) {
    case 'F32': return f32((i) => dv.getFloat32(i * 4, true));
    case 'F64': return f32((i) => dv.getFloat64(i * 8, true));
    case 'F16': return f32((i) => halfToFloat(dv.getUint16(i * 2, true)));
    case 'BF16': return f32((i) => new Float32Array(new Uint32Array([dv.getUint16(i * 2, true) << 16]).buffer)[0]!);
    case 'I32': return i32((i) => dv.getInt32(i * 4, true));
    case 'I16': return i32((i) => dv.getInt16(i * 2, true));
    case 'I64':
      return i32((i) => {
        const v = dv.getBigInt64(i * 8, true);
        if (v < -2147483648n || v > 2147483647n) throw new SafetensorsError('loadSafetensors', `tensor '${name}': int64 value ${v} does not fit Kiln's int32`);
        return Number(v);
      });
    case 'I8': return { data: new Int8Array(bytes.buffer, bytes.byteOffset, n).slice(), dtype: 'int8' };
    case 'U8': return { data: bytes.slice(), dtype: 'uint8' };
    case 'BOOL': return { data: bytes.slice(), dtype: 'bool' };
    default: throw new SafetensorsError('loadSafetensors', `tensor '${name}': unsupported dtype ${dtype}`);
  }
}

/**
 * Decodes safetensors bytes into a state dict of tensors on `device`
 * (default backend when omitted), ready for Module.loadStateDict.
 */
export function loadSafetensors(bytes: Uint8Array, opts: { device?: string } = {}): StateDict {
  const op = 'loadSafetensors';
  if (bytes.byteLength < 8) throw new SafetensorsError(op, `file is ${bytes.byteLength} bytes, shorter than the 8-byte header length`);
  const n = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER) || 8 + Number(n) > bytes.byteLength) throw new SafetensorsError(op, `header length ${n} runs past the end of the ${bytes.byteLength}-byte file`);
  const dataStart = 8 + Number(n);
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, dataStart)));
  } catch (e) {
    throw new SafetensorsError(op, `header is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new SafetensorsError(op, 'header must be a JSON object');
  const out: StateDict = {};
  const dataLen = bytes.byteLength - dataStart;
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const item = ITEM[info?.dtype];
    if (!item) throw new SafetensorsError(op, `tensor '${name}': unknown dtype ${String(info?.dtype)}`);
    const count = info.shape.reduce((a, b) => a * b, 1);
    const [begin, end] = info.data_offsets;
    if (!(begin >= 0 && end >= begin && end <= dataLen)) throw new SafetensorsError(op, `tensor '${name}': data_offsets [${begin}, ${end}] outside the ${dataLen} data bytes`);
    if (end - begin !== count * item) throw new SafetensorsError(op, `tensor '${name}': ${end - begin} bytes for shape [${info.shape.join(', ')}] of ${info.dtype} (expected ${count * item})`);
    const decoded = decode(name, info.dtype, bytes.subarray(dataStart + begin, dataStart + end), count);
    out[name] = fromArray(decoded.data, info.shape, { dtype: decoded.dtype, device: opts.device });
  }
  return out;
}
