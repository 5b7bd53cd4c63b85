/**
 * Host-side layout helpers: how many elements a view covers, whether it is
 * contiguous, and merging dimensions so kernels index as few as possible.
 */
import type { View } from '@kiln/core';

// Shape arithmetic is core's; re-exported so kernel glue imports one module.
export { numel, contiguousStrides, isContiguous as hasContiguousStrides } from '@kiln/core';
import { isContiguous as hasContiguousStrides } from '@kiln/core';

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
