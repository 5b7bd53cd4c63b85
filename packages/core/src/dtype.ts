import { encodeHalf, roundHalf } from './float16.js';

/** Element types a Kiln tensor can hold. Names follow PyTorch's. */
export type DType = 'float32' | 'float16' | 'int32' | 'int8' | 'uint8' | 'bool';

/** Host-side array type for each dtype (bool is stored as 0/1 bytes, float16 as binary16 bit patterns). */
export type TypedArray = Float32Array | Int32Array | Int8Array | Uint8Array | Uint16Array;

/** What a tensor's values read back as (toArray/dataSync): float16 comes back as its exact float32 values. */
export type TensorValues = Float32Array | Int32Array | Int8Array | Uint8Array;

/** Every dtype, in promotion order (later wins). */
export const DTYPES: readonly DType[] = ['bool', 'uint8', 'int8', 'int32', 'float16', 'float32'];

const ARRAY_CTORS = {
  float32: Float32Array,
  float16: Uint16Array,
  int32: Int32Array,
  int8: Int8Array,
  uint8: Uint8Array,
  bool: Uint8Array,
} as const;

/** Bytes per element on the host. */
export function itemSize(dtype: DType): number {
  return ARRAY_CTORS[dtype].BYTES_PER_ELEMENT;
}

/** A new zeroed host array of `dtype` with `length` elements. */
export function allocArray(dtype: DType, length: number): TypedArray {
  return new ARRAY_CTORS[dtype](length);
}

/** Converts any numeric array into the host array type of `dtype`, casting like PyTorch's `.to()`. */
export function toTypedArray(dtype: DType, data: ArrayLike<number | boolean>): TypedArray {
  if (dtype === 'float16') return encodeHalf(data);
  const out = allocArray(dtype, data.length);
  for (let i = 0; i < data.length; i++) out[i] = castScalar(dtype, Number(data[i]));
  return out;
}

/** Casts one number to the value `dtype` stores (float->int truncates toward zero, bool is x != 0). */
export function castScalar(dtype: DType, x: number): number {
  switch (dtype) {
    case 'float32':
      return Math.fround(x);
    case 'float16':
      return roundHalf(x);
    case 'int32':
      return Number.isFinite(x) ? Math.trunc(x) | 0 : 0;
    case 'int8':
      return (Math.trunc(x) << 24) >> 24;
    case 'uint8':
      return Math.trunc(x) & 0xff;
    case 'bool':
      return x !== 0 ? 1 : 0;
  }
}

/** True for dtypes that hold integers or booleans. */
export function isIntegral(dtype: DType): boolean {
  return !isFloating(dtype);
}

/** True for dtypes autograd can differentiate. */
export function isFloating(dtype: DType): boolean {
  return dtype === 'float32' || dtype === 'float16';
}

/** The result dtype of a binary op on two tensors, as torch.result_type. */
export function promoteTypes(a: DType, b: DType): DType {
  if (a === b) return a;
  if (a === 'float32' || b === 'float32') return 'float32';
  if (a === 'float16' || b === 'float16') return 'float16';
  if (a === 'int32' || b === 'int32') return 'int32';
  // int8 with uint8 promotes to int16 in PyTorch; Kiln has no int16, so int32 keeps every value exact.
  if ((a === 'int8' && b === 'uint8') || (a === 'uint8' && b === 'int8')) return 'int32';
  if (a === 'bool') return b;
  return a;
}

/** The dtype of a tensor-scalar op: a float scalar lifts integral tensors to float32. */
export function promoteWithScalar(tensor: DType, scalar: number | boolean): DType {
  if (typeof scalar === 'boolean') return tensor;
  if (!Number.isInteger(scalar) && isIntegral(tensor)) return 'float32';
  if (tensor === 'bool') return Number.isInteger(scalar) ? 'int32' : 'float32';
  return tensor;
}
