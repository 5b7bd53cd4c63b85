import { ShapeError, KilnError, fmtShape } from './errors.js';
import { MAX_RANK } from './backend.js';

/** Number of elements of a shape (1 for a scalar). */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Row-major strides of a contiguous tensor of `shape`. */
export function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= Math.max(shape[i]!, 1);
  }
  return strides;
}

/** True when `strides` lay `shape` out row-major with no gaps (size-1 dims may have any stride). */
export function isContiguous(shape: readonly number[], strides: readonly number[]): boolean {
  let expected = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] === 1) continue;
    if (strides[i] !== expected) return false;
    expected *= shape[i]!;
  }
  return true;
}

/** Resolves a possibly negative dim against `rank`, as PyTorch's wrap_dim. */
export function normalizeDim(op: string, dim: number, rank: number): number {
  const r = Math.max(rank, 1);
  if (!Number.isInteger(dim) || dim < -r || dim >= r) {
    throw new KilnError(op, `dimension out of range (expected to be in range of [${-r}, ${r - 1}], but got ${dim})`);
  }
  return dim < 0 ? dim + r : dim;
}

/** Normalises a list of dims, rejecting repeats. */
export function normalizeDims(op: string, dims: readonly number[], rank: number): number[] {
  const out = dims.map((d) => normalizeDim(op, d, rank));
  if (new Set(out).size !== out.length) throw new KilnError(op, `dim ${dims.join(', ')} appears multiple times in the list of dims`);
  return out;
}

/** The broadcast shape of several shapes, NumPy/PyTorch rules. */
export function broadcastShapes(op: string, ...shapes: (readonly number[])[]): number[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const s of shapes) {
    for (let i = 0; i < s.length; i++) {
      const o = rank - s.length + i;
      const d = s[i]!;
      if (out[o] === 1) out[o] = d;
      else if (d !== 1 && d !== out[o]) {
        throw new ShapeError(op, `shapes ${shapes.map(fmtShape).join(' and ')} cannot be broadcast together (dimension ${i - s.length} is ${d} vs ${out[o]})`);
      }
    }
  }
  return out;
}

/** Strides that read a tensor of (shape, strides) as if it had `target` shape (0 where broadcast). */
export function broadcastStrides(shape: readonly number[], strides: readonly number[], target: readonly number[]): number[] {
  const out = new Array<number>(target.length).fill(0);
  const shift = target.length - shape.length;
  for (let i = 0; i < shape.length; i++) out[i + shift] = shape[i] === 1 && target[i + shift] !== 1 ? 0 : strides[i]!;
  return out;
}

/** Validates a user-supplied shape: non-negative integers, rank within MAX_RANK. */
export function checkShape(op: string, shape: readonly number[]): number[] {
  if (shape.length > MAX_RANK) throw new ShapeError(op, `tensors of rank at most ${MAX_RANK} are supported, got rank ${shape.length}`);
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new ShapeError(op, `expected a shape of non-negative integers, got ${fmtShape(shape)}`);
  }
  return [...shape];
}

/** Resolves one -1 in a reshape target against `total` elements. */
export function inferShape(op: string, target: readonly number[], total: number): number[] {
  const out = [...target];
  const neg = out.indexOf(-1);
  if (out.lastIndexOf(-1) !== neg) throw new ShapeError(op, `only one dimension can be inferred, got ${fmtShape(target)}`);
  if (neg >= 0) {
    const rest = numel(out.filter((_, i) => i !== neg));
    if (rest === 0 || total % rest !== 0) throw new ShapeError(op, `shape ${fmtShape(target)} is invalid for input of size ${total}`);
    out[neg] = total / rest;
  }
  checkShape(op, out);
  if (numel(out) !== total) throw new ShapeError(op, `shape ${fmtShape(target)} is invalid for input of size ${total}`);
  return out;
}

/**
 * Strides for viewing (shape, strides) as `target` without copying, or null
 * when the memory layout does not allow it (PyTorch's computeStride).
 */
export function viewStrides(shape: readonly number[], strides: readonly number[], target: readonly number[]): number[] | null {
  if (numel(shape) === 0 || shape.length === 0) return contiguousStrides(target);
  const out = new Array<number>(target.length);
  let viewD = target.length - 1;
  let chunkBase = strides[strides.length - 1] ?? 1;
  let tensorNumel = 1;
  let viewNumel = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    tensorNumel *= shape[d]!;
    if (d === 0 || (shape[d - 1] !== 1 && strides[d - 1] !== tensorNumel * chunkBase)) {
      while (viewD >= 0 && (viewNumel < tensorNumel || target[viewD] === 1)) {
        out[viewD] = viewNumel * chunkBase;
        viewNumel *= target[viewD]!;
        viewD--;
      }
      if (viewNumel !== tensorNumel) return null;
      if (d > 0) {
        chunkBase = strides[d - 1]!;
        tensorNumel = 1;
        viewNumel = 1;
      }
    }
  }
  if (viewD !== -1) return null;
  return out;
}

/** Shapes equal element by element. */
export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
