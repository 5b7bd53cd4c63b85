import { Tensor } from '../tensor.js';
import { needsAutocast, withAutocast } from '../autocast/autocast.js';
import { isFloating } from '../dtype.js';
import type { ReduceOp } from '../backend.js';
import { DTypeError, KilnError } from '../errors.js';
import { normalizeDims } from '../shape.js';
import { commonBackend, empty, checkAlive } from './util.js';
import { finish } from '../autograd/record.js';
import { noGrad } from '../autograd/grad-mode.js';
import { tidy } from '../memory.js';
import { zeros } from './creation.js';
import { where } from './binary.js';
import { traceOp, tracedAs } from './trace.js';

/** True where x is neither infinite nor NaN (inf - inf and NaN - NaN are NaN). */
export function isfinite(x: Tensor): Tensor {
  if (!isFloating(x.dtype)) return x.eq(x);
  return x.sub(x).eq(0);
}

/** Dims to reduce: undefined means all of them. */
export type Dims = number | readonly number[] | undefined;

function resolveDims(op: string, x: Tensor, dim: Dims): number[] {
  if (dim === undefined) return x.shape.map((_, i) => i);
  return normalizeDims(op, typeof dim === 'number' ? [dim] : dim, x.dim());
}

/** The shape a reduction keeps (size-1 at reduced dims when keepdim). */
function keptShape(x: Tensor, dims: readonly number[], keepdim: boolean): number[] {
  const set = new Set(dims);
  return keepdim ? x.shape.map((s, i) => (set.has(i) ? 1 : s)) : x.shape.filter((_, i) => !set.has(i));
}

/** Runs the reduce primitive: x permuted so reduced dims come last; no autograd. */
function rawReduce(op: ReduceOp, x: Tensor, dims: readonly number[], keepdim: boolean, outDtype: Tensor['dtype']): Tensor {
  const backend = commonBackend(op, [x]);
  const set = new Set(dims);
  const keep = x.shape.map((_, i) => i).filter((i) => !set.has(i));
  const order = [...keep, ...dims];
  const v = x._view();
  const permuted = { ...v, shape: order.map((i) => v.shape[i]!), strides: order.map((i) => v.strides[i]!) };
  const out = empty(keep.map((i) => x.shape[i]!), outDtype, backend);
  const reducedSize = dims.reduce((n, d) => n * x.shape[d]!, 1);
  if (out.numel() > 0) {
    if (reducedSize === 0) {
      if (op === 'sum') backend.fill(out._view(), 0);
      else if (op === 'mean') backend.fill(out._view(), NaN);
      else throw new KilnError(op, `cannot reduce over a zero-size dimension (input shape [${x.shape.join(', ')}]) because the operation has no identity`);
    } else {
      backend.reduce(op, permuted, dims.length, out._view());
    }
  }
  if (!keepdim) return out;
  const shaped = out.view(keptShape(x, dims, true));
  out.dispose();
  return shaped;
}

/** Expands a reduced gradient back over the reduced dims. */
function expandBack(g: Tensor, inputShape: readonly number[], dims: readonly number[], keepdim: boolean): Tensor {
  let r = g;
  if (!keepdim) for (const d of [...dims].sort((a, b) => a - b)) r = r.unsqueeze(d);
  return r.expand(inputShape);
}

/** Sum over dims (all when omitted); ints and bools sum to int32. */
export function sum(x: Tensor, dim?: Dims, keepdim = false): Tensor {
  if (needsAutocast('sum', [x, dim, keepdim])) return withAutocast('sum', [x, dim, keepdim], sum);
  checkAlive('sum', x);
  const dims = resolveDims('sum', x, dim);
  const outDtype = isFloating(x.dtype) ? x.dtype : 'int32';
  const src = isFloating(x.dtype) || x.dtype === 'int32' ? x : x.to('int32');
  const out = rawReduce('sum', src, dims, keepdim, outDtype);
  return finish(out, 'sum', [x], { dims, keepdim }, [], (g) => [expandBack(g, x.shape, dims, keepdim)]);
}

/** Mean over dims (float tensors only, as PyTorch). */
export function mean(x: Tensor, dim?: Dims, keepdim = false): Tensor {
  checkAlive('mean', x);
  if (!isFloating(x.dtype)) throw new DTypeError('mean', `could not infer output dtype: input dtype must be floating point, got ${x.dtype}`);
  const dims = resolveDims('mean', x, dim);
  const n = dims.reduce((a, d) => a * x.shape[d]!, 1);
  const out = rawReduce('mean', x, dims, keepdim, x.dtype);
  return finish(out, 'mean', [x], { dims, keepdim }, [], (g) => [expandBack(g, x.shape, dims, keepdim).div(n)]);
}

/** Max and argmax along one dim, as torch.max(x, dim). */
export interface ValuesIndices {
  /** The extreme values. */
  values: Tensor;
  /** Their int32 indices along the reduced dim. */
  indices: Tensor;
}

function extremumAll(op: 'max' | 'min', x: Tensor): Tensor {
  if (x.numel() === 0) throw new KilnError(op, `${op}(): expected a non-empty tensor for a reduction with no dim`);
  const dims = x.shape.map((_, i) => i);
  const out = rawReduce(op, x, dims, false, x.dtype);
  // Gradient is shared evenly among tied extrema, as PyTorch.
  return finish(out, op, [x], {}, [x, out], (g, [sx, sy]) => {
    const mask = sx!.eq(sy!).to('float32');
    return [mask.mul(g).div(mask.sum())];
  });
}

function extremumDim(op: 'max' | 'min', x: Tensor, dim: number, keepdim: boolean): ValuesIndices {
  const [d] = resolveDims(op, x, dim);
  if (x.shape[d!] === 0) throw new KilnError(op, `cannot compute ${op} over dimension ${d} of size 0`);
  const values = rawReduce(op, x, [d!], keepdim, x.dtype);
  const indices = rawReduce(op === 'max' ? 'argmax' : 'argmin', x, [d!], keepdim, 'int32');
  finish(values, op, [x], { dim: d, keepdim }, [indices], (g, [idx]) => {
    const gk = keepdim ? g : g.unsqueeze(d!);
    const ik = keepdim ? idx! : idx!.unsqueeze(d!);
    return [zeros(x.shape, { device: x.device }).scatterAdd(d!, ik, gk)];
  });
  traceOp(op === 'max' ? 'argmax' : 'argmin', [x], { dim: d, keepdim }, [indices]);
  return { values, indices };
}

/** Largest element (no dim) or {values, indices} along `dim`. */
export function max(x: Tensor): Tensor;
export function max(x: Tensor, dim: number, keepdim?: boolean): ValuesIndices;
export function max(x: Tensor, dim?: number, keepdim = false): Tensor | ValuesIndices {
  return dim === undefined ? extremumAll('max', x) : extremumDim('max', x, dim, keepdim);
}

/** Smallest element (no dim) or {values, indices} along `dim`. */
export function min(x: Tensor): Tensor;
export function min(x: Tensor, dim: number, keepdim?: boolean): ValuesIndices;
export function min(x: Tensor, dim?: number, keepdim = false): Tensor | ValuesIndices {
  return dim === undefined ? extremumAll('min', x) : extremumDim('min', x, dim, keepdim);
}

function argExtremum(op: 'argmax' | 'argmin', x: Tensor, dim: number | undefined, keepdim: boolean): Tensor {
  if (dim === undefined) {
    if (x.numel() === 0) throw new KilnError(op, `${op}(): expected a non-empty tensor`);
    const flat = x.reshape([-1]);
    const r = rawReduce(op, flat, [0], false, 'int32');
    if (!keepdim) return r;
    return r.reshape(x.shape.map(() => 1));
  }
  const dims = resolveDims(op, x, dim);
  if (x.shape[dims[0]!] === 0) throw new KilnError(op, `cannot compute ${op} over dimension ${dims[0]} of size 0`);
  return rawReduce(op, x, dims, keepdim, 'int32');
}

/** Index of the largest element (flat when no dim); first occurrence wins. */
export function argmax(x: Tensor, dim?: number, keepdim = false): Tensor {
  return tracedAs('argmax', [x], { dim: dim ?? null, keepdim }, () => argExtremum('argmax', x, dim, keepdim));
}

/** Index of the smallest element (flat when no dim); first occurrence wins. */
export function argmin(x: Tensor, dim?: number, keepdim = false): Tensor {
  return tracedAs('argmin', [x], { dim: dim ?? null, keepdim }, () => argExtremum('argmin', x, dim, keepdim));
}

/** Options of var/std, as PyTorch's (`unbiased` is the older spelling of correction=1). */
export interface VarOptions {
  /** Older spelling: true is correction 1, false correction 0. */
  unbiased?: boolean;
  /** Subtracted from N in the divisor (1: Bessel's correction, the default). */
  correction?: number;
  /** Keep reduced dims as size 1. Default false. */
  keepdim?: boolean;
}

/** Variance over dims; unbiased (correction 1) by default, as torch.var. */
export function variance(x: Tensor, dim?: Dims, opts: VarOptions = {}): Tensor {
  checkAlive('var', x);
  const dims = resolveDims('var', x, dim);
  const correction = opts.correction ?? (opts.unbiased === false ? 0 : 1);
  const n = dims.reduce((a, d) => a * x.shape[d]!, 1);
  return tidy(() => {
    const centered = x.sub(x.mean(dims, true));
    return centered.square().sum(dims, opts.keepdim ?? false).div(Math.max(n - correction, 0));
  });
}

/** Standard deviation over dims, as torch.std. */
export function std(x: Tensor, dim?: Dims, opts: VarOptions = {}): Tensor {
  checkAlive('std', x);
  return tidy(() => variance(x, dim, opts).sqrt());
}

/** The max along dims, detached, with infinities replaced by 0 so subtracting it is safe. */
function stableShift(x: Tensor, dims: readonly number[], finiteOnly = true): Tensor {
  return noGrad(() => tidy(() => {
    let m = x.detach();
    for (const d of [...dims].sort((a, b) => b - a)) m = m.max(d, true).values;
    return finiteOnly ? where(isfinite(m), m, 0) : m;
  }));
}

/** log(sum(exp(x))) over dims, computed stably (torch.logsumexp). */
export function logsumexp(x: Tensor, dim: Dims, keepdim = false): Tensor {
  if (needsAutocast('logsumexp', [x, dim, keepdim])) return withAutocast('logsumexp', [x, dim, keepdim], logsumexp);
  checkAlive('logsumexp', x);
  const dims = resolveDims('logsumexp', x, dim);
  return tidy(() => {
    const m = stableShift(x, dims);
    const r = x.sub(m).exp().sum(dims, true).log().add(m);
    return keepdim ? r : r.squeeze(dims);
  });
}

/** Softmax along dim, computed stably (max subtracted first). */
export function softmax(x: Tensor, dim: number): Tensor {
  if (needsAutocast('softmax', [x, dim])) return withAutocast('softmax', [x, dim], softmax);
  checkAlive('softmax', x);
  const [d] = resolveDims('softmax', x, dim);
  return tracedAs('softmax', [x], { dim: d }, () =>
    tidy(() => {
      // The raw max, as PyTorch: a row holding +Inf gives Inf - Inf = NaN throughout.
      const e = x.sub(stableShift(x, [d!], false)).exp();
      return e.div(e.sum(d, true));
    }),
  );
}

/** log(softmax(x)) along dim, computed stably. */
export function logSoftmax(x: Tensor, dim: number): Tensor {
  if (needsAutocast('logSoftmax', [x, dim])) return withAutocast('logSoftmax', [x, dim], logSoftmax);
  checkAlive('logSoftmax', x);
  const [d] = resolveDims('logSoftmax', x, dim);
  return tracedAs('logSoftmax', [x], { dim: d }, () =>
    tidy(() => {
      const shifted = x.sub(stableShift(x, [d!], false));
      return shifted.sub(shifted.exp().sum(d, true).log());
    }),
  );
}
