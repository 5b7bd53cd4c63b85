import { Tensor } from '../tensor.js';
import { needsAutocast, withAutocast } from '../autocast/autocast.js';
import { isFloating } from '../dtype.js';
import type { View } from '../backend.js';
import { DTypeError, ShapeError, fmtShape } from '../errors.js';
import { broadcastShapes, viewStrides, numel } from '../shape.js';
import { commonBackend, empty, sumTo, checkAlive } from './util.js';
import { finish } from '../autograd/record.js';
import { tidy } from '../memory.js';

/** A rank-3 [B, R, C] view of x (already broadcast to batch shape), copying only when batch dims don't merge. */
function asBatched(x: Tensor, batch: readonly number[]): View {
  const target = [...batch, x.shape[x.dim() - 2]!, x.shape[x.dim() - 1]!];
  const e = x.expand(target);
  const flat = [numel(batch), target[target.length - 2]!, target[target.length - 1]!];
  const strides = viewStrides(e.shape, e.strides, flat);
  if (strides) return { ...e._view(), shape: flat, strides };
  const c = e.contiguous();
  return { ...c._view(), shape: flat, strides: [flat[1]! * flat[2]!, flat[2]!, 1] };
}

/**
 * 2-D or batched matrix product of float tensors with batch broadcasting (no
 * 1-D handling); `bias` [N] (linear's) is added in the GEMM epilogue.
 */
function matmulNd(a: Tensor, b: Tensor, bias: Tensor | null = null): Tensor {
  const backend = commonBackend('matmul', [a, b, bias]);
  const [m, k] = a.shape.slice(-2) as [number, number];
  const [k2, n] = b.shape.slice(-2) as [number, number];
  if (k !== k2) throw new ShapeError('matmul', `mat1 and mat2 shapes cannot be multiplied (${fmtShape(a.shape)} and ${fmtShape(b.shape)}): inner dimensions ${k} and ${k2} differ`);
  const batch = broadcastShapes('matmul', a.shape.slice(0, -2), b.shape.slice(0, -2));
  const out = empty([...batch, m, n], a.dtype, backend);
  if (out.numel() > 0) {
    if (k === 0) backend.fill(out._view(), 0);
    else
      tidy(() => {
        const ov = out._view();
        const epilogue = bias ? { bias: bias._view(), biasAxis: 'n' as const } : undefined;
        backend.matmul(asBatched(a, batch), asBatched(b, batch), { ...ov, shape: [numel(batch), m, n], strides: [m * n, n, 1] }, epilogue);
      });
  }
  // Save only what the needed gradients read (dA needs B, dB needs A).
  const needA = a.requiresGrad;
  const needB = b.requiresGrad;
  const needBias = bias?.requiresGrad ?? false;
  const saved = [...(needB ? [a] : []), ...(needA ? [b] : [])];
  return finish(out, 'matmul', bias ? [a, b, bias] : [a, b], {}, saved, (g, s) => {
    const sa = needB ? s[0]! : null;
    const sb = needA ? s[needB ? 1 : 0]! : null;
    const grads = [needA ? sumTo(g.matmul(sb!.mT), a.shape) : null, needB ? sumTo(sa!.mT.matmul(g), b.shape) : null];
    return bias ? [...grads, needBias ? sumTo(g, bias.shape) : null] : grads;
  });
}

/**
 * a @ b + bias with the bias [N] added by the GEMM's epilogue rather than a
 * second pass over the output (linear's forward). `a` is 1-D or more, `b`
 * is 2-D, both of bias's dtype; the caller (linear) has checked the shapes.
 */
export function matmulBias(a: Tensor, b: Tensor, bias: Tensor): Tensor {
  // An empty reduction fills the output with zeros and would skip the epilogue.
  if (a.shape[a.dim() - 1] === 0) return tidy(() => matmul(a, b).add(bias));
  if (a.dim() === 1) return tidy(() => matmulNd(a.unsqueeze(0), b, bias).squeeze(0));
  return matmulNd(a, b, bias);
}

/**
 * Matrix product with torch.matmul's rules: 1-D operands are treated as a
 * row/column vector and that dim removed from the result; batch dims
 * broadcast.
 */
export function matmul(a: Tensor, b: Tensor): Tensor {
  if (needsAutocast('matmul', [a, b])) return withAutocast('matmul', [a, b], matmul);
  checkAlive('matmul', a, b);
  if (a.dim() === 0 || b.dim() === 0) throw new ShapeError('matmul', `both arguments to matmul need to be at least 1D, but they are ${a.dim()}D and ${b.dim()}D`);
  if (!isFloating(a.dtype) || a.dtype !== b.dtype) throw new DTypeError('matmul', `expected float operands of one dtype (float32, or float16 as autocast gives), got ${a.dtype} and ${b.dtype}`);
  if (a.dim() >= 2 && b.dim() >= 2) return matmulNd(a, b);
  return tidy(() => {
    const a2 = a.dim() === 1 ? a.unsqueeze(0) : a;
    const b2 = b.dim() === 1 ? b.unsqueeze(1) : b;
    let r = matmulNd(a2, b2);
    if (b.dim() === 1) r = r.squeeze(-1);
    if (a.dim() === 1) r = r.squeeze(a.dim() === 1 && b.dim() === 1 ? 0 : -2);
    return r;
  });
}
