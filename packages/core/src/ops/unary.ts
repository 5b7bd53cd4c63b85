import { Tensor } from '../tensor.js';
import { needsAutocast, withAutocast } from '../autocast/autocast.js';
import { isFloating } from '../dtype.js';
import type { UnaryOp, UnaryParams } from '../backend.js';
import { DTypeError, KilnError, ShapeError, fmtShape } from '../errors.js';
import { sameShape } from '../shape.js';
import { commonBackend, empty } from './util.js';
import { finish } from '../autograd/record.js';
import type { BackwardFn } from '../autograd/node.js';
import { noGrad } from '../autograd/grad-mode.js';

/** Ops that need a floating input (PyTorch promotes ints to float for these). */
const FLOAT_ONLY = new Set<UnaryOp>(['exp', 'log', 'sqrt', 'rsqrt', 'sin', 'cos', 'tanh', 'sigmoid', 'reciprocal']);

/**
 * Each unary op's gradient, beside its forward (x = input, y = output).
 * Ops with a zero gradient almost everywhere (sign, floor, ...) return zeros.
 */
const GRADS: Partial<Record<UnaryOp, (g: Tensor, x: Tensor, y: Tensor, p?: UnaryParams) => Tensor>> = {
  neg: (g) => g.neg(),
  abs: (g, x) => g.mul(x.sign()),
  exp: (g, _x, y) => g.mul(y),
  log: (g, x) => g.div(x),
  sqrt: (g, _x, y) => g.div(y.mul(2)),
  rsqrt: (g, _x, y) => g.mul(y.pow(3)).mul(-0.5),
  sin: (g, x) => g.mul(x.cos()),
  cos: (g, x) => g.mul(x.sin()).neg(),
  tanh: (g, _x, y) => g.mul(y.square().neg().add(1)),
  sigmoid: (g, _x, y) => g.mul(y).mul(y.neg().add(1)),
  // PyTorch's threshold_backward: zero where the output is <= 0, the gradient elsewhere (a NaN input passes it on).
  relu: (g, _x, y) => thresholdBackward(g, y, 0),
  square: (g, x) => g.mul(x).mul(2),
  reciprocal: (g, _x, y) => g.mul(y.square()).neg(),
  sign: (g) => g.mul(0),
  floor: (g) => g.mul(0),
  ceil: (g) => g.mul(0),
  round: (g) => g.mul(0),
  // PyTorch passes the gradient where min <= x <= max (inclusive bounds).
  clamp: (g, x, _y, p) => {
    let mask = x.eq(x); // false at NaN
    if (p?.min !== undefined) mask = mask.logicalAnd(x.ge(p.min));
    if (p?.max !== undefined) mask = mask.logicalAnd(x.le(p.max));
    return g.mul(mask);
  },
};

/**
 * PyTorch's threshold_backward(grad, x, threshold): x <= threshold ? 0 : grad, in one
 * backend pass (the Backend primitive), over grad's shape. Backward formulas only
 * (run under noGrad: the result records no graph). x has grad's shape.
 */
export function thresholdBackward(grad: Tensor, x: Tensor, threshold: number): Tensor {
  const backend = commonBackend('threshold_backward', [grad, x]);
  if (!isFloating(grad.dtype)) throw new DTypeError('threshold_backward', `expected a floating gradient, got ${grad.dtype}`);
  if (!sameShape(grad.shape, x.shape)) throw new ShapeError('threshold_backward', `expected the input's shape ${fmtShape(grad.shape)} (the gradient's), got ${fmtShape(x.shape)}`);
  const out = empty(grad.shape, grad.dtype, backend);
  if (out.numel() > 0) backend.thresholdBackward(grad._view(), x._view(), threshold, out._view());
  return out;
}

/** Which of x / y a gradient formula reads (to save only what is needed). */
const NEEDS_OUTPUT = new Set<UnaryOp>(['exp', 'sqrt', 'rsqrt', 'tanh', 'sigmoid', 'relu', 'reciprocal']);

function outDtype(op: UnaryOp, x: Tensor): Tensor['dtype'] {
  if (op === 'logicalNot') return 'bool';
  if (FLOAT_ONLY.has(op) && !isFloating(x.dtype)) return 'float32';
  if (x.dtype === 'bool' && op !== 'abs' && op !== 'relu' && op !== 'floor' && op !== 'ceil' && op !== 'round') {
    if (op === 'neg') throw new DTypeError('neg', 'negation, the `-` operator, on a bool tensor is not supported; use logicalNot() instead');
    return op === 'sign' ? 'bool' : 'int32';
  }
  return x.dtype;
}

/** Runs a unary primitive out of place, with autograd. */
export function unary(op: UnaryOp, x: Tensor, params?: UnaryParams): Tensor {
  if (needsAutocast(op, [x])) return withAutocast(op, [x], (y: Tensor) => unary(op, y, params));
  const backend = commonBackend(op, [x]);
  if (op === 'clamp' && params?.min === undefined && params?.max === undefined) {
    throw new KilnError('clamp', 'at least one of min or max must not be None');
  }
  const out = empty(x.shape, outDtype(op, x), backend);
  if (out.numel() > 0) backend.unary(op, x._view(), out._view(), params);
  const grad = GRADS[op];
  const usesOutput = NEEDS_OUTPUT.has(op);
  const saved = op === 'neg' ? [] : usesOutput ? [out] : [x];
  const backward: BackwardFn | null =
    grad && isFloating(out.dtype) && isFloating(x.dtype)
      ? (g, s) => [usesOutput ? grad(g, s[0]!, s[0]!, params) : grad(g, s[0] ?? g, s[0] ?? g, params)]
      : null;
  return finish(out, op, [x], { ...params }, saved, backward);
}

/** Runs a unary primitive in place on x (its storage version is bumped). */
export function unaryInPlace(op: UnaryOp, x: Tensor, params?: UnaryParams): Tensor {
  // relu_, exp_, sigmoid_, ...: the gradient reads the output, so the input needs no snapshot.
  const savesInput = !NEEDS_OUTPUT.has(op) && op !== 'neg';
  return x._inPlace(op, [], (self) => unary(op, self, params), () => {
    if (x.numel() > 0) x._storage.backend.unary(op, x._view(), x._view(), params);
  }, savesInput);
}

/** Elementwise cast to `dtype` (no-op alias when equal), differentiable between float dtypes. */
export function cast(x: Tensor, dtype: Tensor['dtype']): Tensor {
  if (x.dtype === dtype) return x;
  const backend = commonBackend('to', [x]);
  const out = empty(x.shape, dtype, backend);
  if (out.numel() > 0) backend.copy(x._view(), out._view());
  // Between float dtypes the gradient goes back in the input's dtype (float16 -> float32 under autocast).
  const backward: BackwardFn | null = isFloating(dtype) && isFloating(x.dtype) ? (g) => [g.dtype === x.dtype ? g : cast(g, x.dtype)] : null;
  return finish(out, 'cast', [x], { dtype }, [], backward);
}

/** A contiguous copy with its own storage (torch.clone). */
export function clone(x: Tensor): Tensor {
  const backend = commonBackend('clone', [x]);
  const out = empty(x.shape, x.dtype, backend);
  if (out.numel() > 0) backend.copy(x._view(), out._view());
  return finish(out, 'clone', [x], {}, [], (g) => [g]);
}

/** Writes src (broadcast) into dst in place (dst.copy_(src)). */
export function copyInto(dst: Tensor, src: Tensor): Tensor {
  const backend = commonBackend('copy_', [dst, src]);
  const srcB = src.expand(dst.shape);
  return dst._inPlace(
    'copy_',
    [src],
    () => {
      // Out-of-place equivalent for autograd: the result is src (cast and broadcast).
      const r = noGrad(() => cast(srcB, dst.dtype).clone());
      return finish(r, 'copy_', [srcB], {}, [], isFloating(r.dtype) && isFloating(srcB.dtype) ? (g) => [g.dtype === srcB.dtype ? g : cast(g, srcB.dtype)] : null);
    },
    () => {
      if (dst.numel() > 0) backend.copy(srcB._view(), dst._view());
    },
  );
}
