import { FormatError } from './errors.js';

/**
 * Element types a weight file can hold, named like PyTorch's. Wider than
 * core's `DType` on purpose: a reader must represent what is in the file
 * before deciding how to narrow it (see {@link widenToKiln}).
 */
export type RawDType =
  | 'float32'
  | 'float64'
  | 'float16'
  | 'bfloat16'
  | 'int64'
  | 'int32'
  | 'int16'
  | 'int8'
  | 'uint8'
  | 'bool';

/**
 * Host array per {@link RawDType}: float16/bfloat16 hold raw bit patterns
 * in a Uint16Array (JS has no half type), int64 a BigInt64Array, bool 0/1 bytes.
 */
export type RawArray =
  | Float32Array
  | Float64Array
  | Uint16Array
  | BigInt64Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint8Array;

/** A dense, contiguous, row-major tensor on plain typed arrays: what the readers return and the writer takes. */
export interface RawTensor {
  /** The file's element type. */
  dtype: RawDType;
  /** Sizes of each dim. */
  shape: number[];
  /** The elements, row-major, in the dtype's array type. */
  data: RawArray;
}

/** The dtypes Kiln's core tensors hold; a widened {@link RawTensor} has one of these (float16 only when kept, see {@link WidenOptions}). */
export type KilnDType = 'float32' | 'float16' | 'int32' | 'int8' | 'uint8' | 'bool';

/** How {@link widenToKiln} (and the readers that call it) treats float16. */
export interface WidenOptions {
  /**
   * 'float32' (default): float16 tensors widen to float32 (exact).
   * 'keep': they stay float16 (the raw bit patterns, a Kiln float16 tensor's
   * host form), so fp16 weights load at 2 bytes per element.
   */
  float16?: 'float32' | 'keep';
}

const CTORS = {
  float32: Float32Array,
  float64: Float64Array,
  float16: Uint16Array,
  bfloat16: Uint16Array,
  int64: BigInt64Array,
  int32: Int32Array,
  int16: Int16Array,
  int8: Int8Array,
  uint8: Uint8Array,
  bool: Uint8Array,
} as const;

/** Bytes per element of `dtype` in a file (and in its host array). */
export function rawItemSize(dtype: RawDType): number {
  return CTORS[dtype].BYTES_PER_ELEMENT;
}

/** A zeroed host array of `dtype` with `length` elements. */
export function allocRaw(dtype: RawDType, length: number): RawArray {
  return new CTORS[dtype](length);
}

/**
 * Views little-endian file bytes as the host array of `dtype`, copying them
 * into a fresh buffer: zip entries and file regions are rarely aligned to
 * the element size, and the caller must not alias the file's memory.
 */
export function rawFromBytes(dtype: RawDType, bytes: Uint8Array): RawArray {
  if (!LITTLE_ENDIAN) throw new FormatError('rawFromBytes', 'big-endian hosts are not supported');
  const size = rawItemSize(dtype);
  if (bytes.byteLength % size !== 0) {
    throw new FormatError('rawFromBytes', `${bytes.byteLength} bytes is not a whole number of ${dtype} elements`);
  }
  const copy = bytes.slice();
  return new CTORS[dtype](copy.buffer, 0, copy.byteLength / size);
}

/** The little-endian bytes of a host array (a view, not a copy). */
export function rawToBytes(data: RawArray): Uint8Array {
  if (!LITTLE_ENDIAN) throw new FormatError('rawToBytes', 'big-endian hosts are not supported');
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Product of a shape's sizes (1 for a scalar). */
export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const s of shape) n *= s;
  return n;
}

/** IEEE half bits to the float32 value they denote (exact: every half is a float32). */
export function halfToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >> 10) & 0x1f;
  const frac = bits & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24; // zero and subnormals
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1024 + frac) * 2 ** (exp - 25);
}

/** Converts raw half or bfloat16 bits to float32 values (exact for both). */
export function bitsToFloat32(dtype: 'float16' | 'bfloat16', bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  if (dtype === 'bfloat16') {
    // bfloat16 is the top half of a float32: shift the bits into place.
    const u32 = new Uint32Array(out.buffer);
    for (let i = 0; i < bits.length; i++) u32[i] = bits[i]! << 16;
  } else {
    for (let i = 0; i < bits.length; i++) out[i] = halfToFloat(bits[i]!);
  }
  return out;
}

const INT32_MIN = -(2n ** 31n);
const INT32_MAX = 2n ** 31n - 1n;

/** A {@link RawTensor} whose dtype Kiln tensors have: what {@link widenToKiln} returns. */
export interface KilnRawTensor extends RawTensor {
  /** A dtype Kiln tensors have. */
  dtype: KilnDType;
}

/**
 * Narrows a tensor to a dtype Kiln's core holds, the rule every reader applies
 * unless asked to keep file dtypes:
 * - float16 -> float32 (exact), or kept as float16 with `{ float16: 'keep' }`;
 *   bfloat16 -> float32 (exact); float64 -> float32 (rounded to nearest);
 * - int64, int16 -> int32 when every value fits. An int64 value outside int32
 *   (never the case for `num_batches_tracked` in practice) is an error naming
 *   the tensor, never a silent wrap-around; read such files with `keepDtype`.
 * - int32, int8, uint8, bool and float32 pass through unchanged.
 */
export function widenToKiln(t: RawTensor, op: string, key: string, opts: WidenOptions = {}): KilnRawTensor {
  const { shape } = t;
  if (t.dtype === 'float16' && opts.float16 === 'keep') return t as KilnRawTensor;
  switch (t.dtype) {
    case 'float32':
    case 'int32':
    case 'int8':
    case 'uint8':
    case 'bool':
      return t as RawTensor & { dtype: KilnDType };
    case 'float16':
    case 'bfloat16':
      return { dtype: 'float32', shape, data: bitsToFloat32(t.dtype, t.data as Uint16Array) };
    case 'float64':
      return { dtype: 'float32', shape, data: Float32Array.from(t.data as Float64Array) };
    case 'int16':
      return { dtype: 'int32', shape, data: Int32Array.from(t.data as Int16Array) };
    case 'int64': {
      const src = t.data as BigInt64Array;
      const out = new Int32Array(src.length);
      for (let i = 0; i < src.length; i++) {
        const v = src[i]!;
        if (v < INT32_MIN || v > INT32_MAX) {
          throw new FormatError(op, `'${key}' holds int64 value ${v}, which does not fit Kiln's int32; pass { keepDtype: true } to read it as BigInt64Array`);
        }
        out[i] = Number(v);
      }
      return { dtype: 'int32', shape, data: out };
    }
  }
}
