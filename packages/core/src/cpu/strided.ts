import type { View } from '../backend.js';
import type { TypedArray } from '../dtype.js';
import { isContiguous, numel } from '../shape.js';
import type { CpuStorage } from './storage.js';
import { halfValue } from '../float16.js';

/**
 * Storage offsets of every element of a strided view, in row-major order of
 * its shape. The reference backend favours this simple form over speed.
 */
export function offsetsOf(shape: readonly number[], strides: readonly number[], offset: number): Int32Array {
  const n = numel(shape);
  const out = new Int32Array(n);
  if (n === 0) return out;
  const rank = shape.length;
  if (rank === 0) {
    out[0] = offset;
    return out;
  }
  const idx = new Array<number>(rank).fill(0);
  let off = offset;
  const last = rank - 1;
  const lastSize = shape[last]!;
  const lastStride = strides[last]!;
  for (let i = 0; i < n; ) {
    for (let j = 0; j < lastSize; j++) out[i++] = off + j * lastStride;
    // Odometer increment over the leading dims.
    let d = last - 1;
    while (d >= 0) {
      idx[d]!++;
      off += strides[d]!;
      if (idx[d]! < shape[d]!) break;
      off -= strides[d]! * shape[d]!;
      idx[d] = 0;
      d--;
    }
  }
  return out;
}

/** The host array behind a view. */
export function arr(v: View): TypedArray {
  return (v.storage as CpuStorage).data;
}

/** The elements of a view, row-major, in an array of its own dtype (read-only: may share storage). */
export function gatherView(v: View): TypedArray {
  const src = arr(v);
  // A dense view is already in this layout: hand out a window, not a copy
  // (callers only read it).
  if (isContiguous(v.shape, v.strides)) return src.subarray(v.offset, v.offset + numel(v.shape));
  const offs = offsetsOf(v.shape, v.strides, v.offset);
  const out = new (src.constructor as new (n: number) => TypedArray)(offs.length);
  for (let i = 0; i < offs.length; i++) out[i] = src[offs[i]!]!;
  return out;
}

/** Element getter for a view operand or a scalar. */
export function reader(x: View | number, shape: readonly number[]): (i: number) => number {
  if (typeof x === 'number') return () => x;
  const data = arr(x);
  const offs = offsetsOf(shape, x.strides, x.offset);
  if (x.dtype === 'float16') return (i) => halfValue(data[offs[i]!]!);
  return (i) => data[offs[i]!]!;
}
