import { Tensor } from '../tensor.js';
import { KilnError, ShapeError, fmtShape } from '../errors.js';
import { normalizeDim, normalizeDims, inferShape, viewStrides, isContiguous, checkShape, numel } from '../shape.js';
import { finish } from '../autograd/record.js';
import { commonBackend, empty } from './util.js';
import { noGrad } from '../autograd/grad-mode.js';
import { tracedAs } from './trace.js';

/** x viewed as `shape` without copying; throws when strides do not allow it (torch.view). */
export function view(x: Tensor, shape: readonly number[]): Tensor {
  x._checkAlive('view');
  const target = inferShape('view', shape, x.numel());
  const strides = viewStrides(x.shape, x.strides, target);
  if (!strides) {
    throw new ShapeError('view', `view size ${fmtShape(target)} is not compatible with input tensor's size ${fmtShape(x.shape)} and stride ${fmtShape(x.strides)}; use reshape() instead`);
  }
  const out = x._viewOf(target, strides, x.offset);
  return finish(out, 'view', [x], { shape: target }, [], (g) => [g.reshape(x.shape)]);
}

/** x as `shape`: a view when possible, else a contiguous copy (torch.reshape). */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  x._checkAlive('reshape');
  const target = inferShape('reshape', shape, x.numel());
  if (viewStrides(x.shape, x.strides, target)) return view(x, target);
  return view(x.contiguous(), target);
}

/** Dimensions reordered (torch.permute). */
export function permute(x: Tensor, dims: readonly number[]): Tensor {
  x._checkAlive('permute');
  if (dims.length !== x.dim()) throw new ShapeError('permute', `number of dims don't match: input has ${x.dim()} dims, got ${dims.length} (${fmtShape(dims)})`);
  const d = normalizeDims('permute', dims, x.dim());
  const out = x._viewOf(
    d.map((i) => x.shape[i]!),
    d.map((i) => x.strides[i]!),
    x.offset,
  );
  const inverse = new Array<number>(d.length);
  d.forEach((v, i) => (inverse[v] = i));
  return finish(out, 'permute', [x], { dims: d }, [], (g) => [g.permute(inverse)]);
}

/** Swaps two dims (torch.transpose). */
export function transpose(x: Tensor, dim0: number, dim1: number): Tensor {
  x._checkAlive('transpose');
  const r = x.dim();
  if (r === 0) return permute(x, []);
  const a = normalizeDim('transpose', dim0, r);
  const b = normalizeDim('transpose', dim1, r);
  const dims = [...Array(r).keys()];
  [dims[a], dims[b]] = [dims[b]!, dims[a]!];
  return permute(x, dims);
}

/**
 * Elements start, start+step, ... below end along `dim` (Python slicing:
 * negative and out-of-range bounds are clamped, step > 0).
 */
export function slice(x: Tensor, dim: number, start = 0, end = Infinity, step = 1): Tensor {
  x._checkAlive('slice');
  if (x.dim() === 0) throw new KilnError('slice', 'slice() cannot be applied to a 0-dim tensor');
  const d = normalizeDim('slice', dim, x.dim());
  if (!Number.isInteger(step) || step <= 0) throw new KilnError('slice', `step must be a positive integer, got ${step}`);
  const size = x.shape[d]!;
  const clampIdx = (i: number) => Math.min(Math.max(i < 0 ? i + size : i, 0), size);
  const s = clampIdx(start);
  const e = Math.max(clampIdx(end === Infinity ? size : end), s);
  const len = Math.ceil((e - s) / step);
  const shape = [...x.shape];
  const strides = [...x.strides];
  shape[d] = len;
  strides[d] = x.strides[d]! * step;
  const out = x._viewOf(shape, strides, x.offset + (len > 0 ? s * x.strides[d]! : 0));
  return finish(out, 'slice', [x], { dim: d, start: s, end: e, step }, [], (g) => [sliceBackward(g, x.shape, d, s, e, step)]);
}

function sliceBackward(g: Tensor, shape: readonly number[], dim: number, start: number, end: number, step: number): Tensor {
  const dx = empty(shape, g.dtype, commonBackend('slice', [g]));
  dx.zero_();
  noGrad(() => dx.slice(dim, start, end, step).copy_(g));
  return dx;
}

/** `length` elements from `start` along `dim` (torch.narrow); start and length must be in range. */
export function narrow(x: Tensor, dim: number, start: number, length: number): Tensor {
  const d = normalizeDim('narrow', dim, x.dim());
  const size = x.shape[d]!;
  const s = start < 0 ? start + size : start;
  if (s < 0 || length < 0 || s + length > size) {
    throw new KilnError('narrow', `start (${start}) + length (${length}) exceeds dimension size (${size}) of dim ${d}`);
  }
  return slice(x, d, s, s + length);
}

/** The sub-tensor at `index` along `dim`, with that dim removed (torch.select). */
export function select(x: Tensor, dim: number, index: number): Tensor {
  const d = normalizeDim('select', dim, x.dim());
  const size = x.shape[d]!;
  if (index < -size || index >= size) throw new KilnError('select', `index ${index} out of range for dimension ${d} with size ${size}`);
  const i = index < 0 ? index + size : index;
  return slice(x, d, i, i + 1).squeeze(d);
}

/** Size-1 dims repeated to `shape` without copying; -1 keeps a dim (torch.expand). */
export function expand(x: Tensor, shape: readonly number[]): Tensor {
  x._checkAlive('expand');
  if (shape.length < x.dim()) {
    throw new ShapeError('expand', `the number of sizes provided (${shape.length}) must be greater or equal to the number of dimensions in the tensor (${x.dim()})`);
  }
  const lead = shape.length - x.dim();
  const target = shape.map((s, i) => (s === -1 && i >= lead ? x.shape[i - lead]! : s));
  checkShape('expand', target);
  const strides = target.map((s, i) => {
    if (i < lead) return 0;
    const own = x.shape[i - lead]!;
    if (own === s) return x.strides[i - lead]!;
    if (own !== 1) throw new ShapeError('expand', `the expanded size of the tensor (${s}) must match the existing size (${own}) at non-singleton dimension ${i}; target sizes ${fmtShape(shape)}, tensor sizes ${fmtShape(x.shape)}`);
    return 0;
  });
  if (target.every((s, i) => i >= lead && s === x.shape[i - lead])) return x;
  const out = x._viewOf(target, strides, x.offset);
  return finish(out, 'expand', [x], { shape: target }, [], (g) => {
    const dims = target.map((_, i) => i).filter((i) => i < lead || (x.shape[i - lead] === 1 && target[i] !== 1));
    let r = dims.length ? g.sum(dims, true) : g;
    if (lead) r = r.reshape(x.shape);
    return [r];
  });
}

/** Removes size-1 dims (all, or the given ones when they are size 1). */
export function squeeze(x: Tensor, dim?: number | readonly number[]): Tensor {
  const dims =
    dim === undefined
      ? x.shape.map((_, i) => i)
      : normalizeDims('squeeze', typeof dim === 'number' ? [dim] : dim, x.dim());
  const drop = new Set(dims.filter((d) => x.shape[d] === 1));
  return reshapeAsView(x, x.shape.filter((_, i) => !drop.has(i)), x.strides.filter((_, i) => !drop.has(i)), 'squeeze');
}

/** Inserts a size-1 dim at `dim` (torch.unsqueeze). */
export function unsqueeze(x: Tensor, dim: number): Tensor {
  const d = normalizeDim('unsqueeze', dim, x.dim() + 1);
  const shape = [...x.shape];
  const strides = [...x.strides];
  shape.splice(d, 0, 1);
  strides.splice(d, 0, d < x.dim() ? x.strides[d]! * x.shape[d]! : 1);
  return reshapeAsView(x, shape, strides, 'unsqueeze');
}

function reshapeAsView(x: Tensor, shape: number[], strides: number[], op: string): Tensor {
  x._checkAlive(op);
  checkShape(op, shape);
  const out = x._viewOf(shape, strides, x.offset);
  return finish(out, op, [x], { shape }, [], (g) => [g.reshape(x.shape)]);
}

/** Dims startDim..endDim merged into one (torch.flatten). */
export function flatten(x: Tensor, startDim = 0, endDim = -1): Tensor {
  if (x.dim() === 0) return reshape(x, [1]);
  const s = normalizeDim('flatten', startDim, x.dim());
  const e = normalizeDim('flatten', endDim, x.dim());
  if (s > e) throw new KilnError('flatten', `flatten() has invalid args: start_dim (${startDim}) cannot come after end_dim (${endDim})`);
  const merged = numel(x.shape.slice(s, e + 1));
  return tracedAs('flatten', [x], { startDim: s, endDim: e }, () => reshape(x, [...x.shape.slice(0, s), merged, ...x.shape.slice(e + 1)]));
}

/** Dim `dim` split into `sizes` (torch.unflatten). */
export function unflatten(x: Tensor, dim: number, sizes: readonly number[]): Tensor {
  const d = normalizeDim('unflatten', dim, x.dim());
  const inner = inferShape('unflatten', sizes, x.shape[d]!);
  return reshape(x, [...x.shape.slice(0, d), ...inner, ...x.shape.slice(d + 1)]);
}

/** x itself when contiguous, else a contiguous copy (torch.contiguous). */
export function contiguous(x: Tensor): Tensor {
  x._checkAlive('contiguous');
  if (isContiguous(x.shape, x.strides)) return x;
  return x.clone();
}
