/**
 * Host-side layout helpers: how many elements a view covers, whether it is
 * contiguous, and merging dimensions so kernels index as few as possible.
 */
import type { View } from '@kiln/core';

/** Number of elements of `shape`. */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const s of shape) n *= s;
  return n;
}

/** Row-major strides of `shape`. */
export function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    strides[d] = s;
    s *= shape[d];
  }
  return strides;
}

/** True when `strides` are row-major for `shape` (size-1 dims may have any stride). */
export function hasContiguousStrides(shape: readonly number[], strides: readonly number[]): boolean {
  let s = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (shape[d] !== 1 && strides[d] !== s) return false;
    s *= shape[d];
  }
  return true;
}

/** True when the view reads a dense row-major block (any offset). */
export function isContiguous(v: View): boolean {
  return hasContiguousStrides(v.shape, v.strides);
}

/**
 * Merges dimensions of a shape shared by several operands: drops size-1
 * dims and fuses neighbours that are contiguous in every operand. Returns
 * at least rank 1.
 */
export function coalesce(shape: readonly number[], strides: (readonly number[])[]): { shape: number[]; strides: number[][] } {
  const outShape: number[] = [];
  const outStrides: number[][] = strides.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    const n = shape[d];
    if (n === 1) continue;
    const last = outShape.length - 1;
    if (last >= 0 && strides.every((st, j) => outStrides[j][last] === st[d] * n)) {
      outShape[last] *= n;
      strides.forEach((st, j) => (outStrides[j][last] = st[d]));
    } else {
      outShape.push(n);
      strides.forEach((st, j) => outStrides[j].push(st[d]));
    }
  }
  if (outShape.length === 0) {
    outShape.push(1);
    outStrides.forEach((s) => s.push(0));
  }
  return { shape: outShape, strides: outStrides };
}
