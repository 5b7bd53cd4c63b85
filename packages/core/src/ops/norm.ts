import { Tensor } from '../tensor.js';
import { checkAlive } from './util.js';
import { DTypeError, KilnError, ShapeError, fmtShape } from '../errors.js';
import { noGrad } from '../autograd/grad-mode.js';
import { tidy } from '../memory.js';
import { commonBackend, empty } from './util.js';
import { finish, needsGrad } from '../autograd/record.js';
import type { Backend, View } from '../backend.js';
import { isRecomputing } from '../autograd/recompute.js';
import { isFloating } from '../dtype.js';
import { tracedAs, untraced } from './trace.js';

/** Options of batchNorm, as torch.nn.functional.batch_norm. */
export interface BatchNormOptions {
  /** Per-channel scale [C] (gamma), or none. */
  weight?: Tensor | null;
  /** Per-channel shift [C] (beta), or none. */
  bias?: Tensor | null;
  /** Batch statistics (true) or running statistics (false). */
  training?: boolean;
  /** Running-stat update factor; null means a cumulative average (PyTorch's momentum=None, needs numBatchesTracked). */
  momentum?: number | null;
  /** Added to the variance before the square root. Default 1e-5. */
  eps?: number;
  /** Batches seen so far, for momentum=null (cumulative moving average). */
  numBatchesTracked?: number;
}

/**
 * Batch normalisation over the channel dim (dim 1) of [N, C, ...] input.
 * Training mode normalises with the batch mean and biased variance and
 * updates the running stats in place with the unbiased variance; eval mode
 * uses the running stats. Differentiable in both modes.
 */
export function batchNorm(x: Tensor, runningMean: Tensor | null, runningVar: Tensor | null, opts: BatchNormOptions = {}): Tensor {
  checkAlive('batchNorm', x, runningMean, runningVar, opts.weight, opts.bias);
  if (x.dim() < 2) throw new ShapeError('batchNorm', `expected input with at least 2 dims [N, C, ...], got ${fmtShape(x.shape)}`);
  // float16 input (autocast leaves batch norm to its input's dtype, as PyTorch): the output and the
  // saved input stay float16; statistics, scale and shift are float32 (the primitives compute in float32).
  if (!isFloating(x.dtype)) throw new DTypeError('batchNorm', `expected float32 or float16 input, got ${x.dtype}`);
  const C = x.shape[1]!;
  const eps = opts.eps ?? 1e-5;
  const training = opts.training ?? false;
  for (const [name, t] of [['weight', opts.weight], ['bias', opts.bias], ['runningMean', runningMean], ['runningVar', runningVar]] as const) {
    if (t && (t.dim() !== 1 || t.shape[0] !== C)) throw new ShapeError('batchNorm', `expected ${name} of shape [${C}] (the input's channels), got ${fmtShape(t.shape)}`);
  }
  if (!training && (!runningMean || !runningVar)) throw new KilnError('batchNorm', 'running_mean and running_var must be defined in evaluation mode');
  const dims = [0, ...x.shape.slice(2).map((_, i) => i + 2)];
  const count = dims.reduce((n, d) => n * x.shape[d]!, 1);
  if (training && count <= 1) throw new KilnError('batchNorm', `expected more than 1 value per channel when training, got input size ${fmtShape(x.shape)}`);
  const bshape = x.shape.map((s, i) => (i === 1 ? s : 1));
  const backend = commonBackend('batchNorm', [x, runningMean, runningVar, opts.weight, opts.bias]);
  const { weight, bias } = opts;
  // What a tracer sees: one batchNorm with its affine and statistics; the scale/shift helpers stay internal.
  const tracedInputs = [x, weight ?? null, bias ?? null, runningMean, runningVar];
  if (!training) {
    const needAffineGrad = needsGrad(weight, bias);
    // Eval with a trainable affine: compose (autograd derives every gradient).
    if (needAffineGrad) {
      return tracedAs('batchNorm', tracedInputs, { training, eps }, () =>
        tidy(() => {
          let y = x.sub(runningMean!.reshape(bshape)).mul(runningVar!.add(eps).rsqrt().reshape(bshape));
          if (weight) y = y.mul(weight.reshape(bshape));
          // float16 input: the float32 statistics promoted the arithmetic; the output keeps the input's dtype.
          return (bias ? y.add(bias.reshape(bshape)) : y).to(x.dtype);
        }),
      );
    }
    // Eval: one fused pass, y = x * scale[c] + shift[c].
    const { scale, shift } = untraced(() => noGrad(() =>
      tidy(() => {
        const sc = weight ? runningVar!.add(eps).rsqrt().mul(weight) : runningVar!.add(eps).rsqrt();
        const sh = bias ? bias.sub(runningMean!.mul(sc)) : runningMean!.mul(sc).neg();
        return { scale: sc, shift: sh };
      }),
    ));
    const out = untraced(() => affine(x, scale, shift, backend));
    const result = finish(out, 'batchNorm', tracedInputs, { training, eps }, [scale], (g, [sc]) => [affineOf(g, sc!, null, backend), null, null, null, null]);
    scale.dispose();
    shift.dispose();
    return result;
  }
  // Training: batch statistics in one fused reduction, normalisation in one pass.
  const xc = untraced(() => x.contiguous());
  const x3 = as3d(xc, C);
  const mean = empty([C], 'float32', backend);
  const variance = empty([C], 'float32', backend);
  backend.batchNormStats(x3, mean._view(), variance._view());
  const { invStd, scale, shift } = untraced(() => noGrad(() =>
    tidy(() => {
      const is = variance.add(eps).rsqrt();
      const sc = weight ? is.mul(weight) : is;
      const sh = bias ? bias.sub(mean.mul(sc)) : mean.mul(sc).neg();
      return { invStd: is, scale: sc === is ? is.clone() : sc, shift: sh };
    }),
  ));
  // A checkpoint's recomputation must not count the batch a second time.
  if (runningMean && runningVar && !isRecomputing()) {
    untraced(() => noGrad(() =>
      tidy(() => {
        const m = opts.momentum === null ? 1 / ((opts.numBatchesTracked ?? 0) + 1) : (opts.momentum ?? 0.1);
        runningMean.mul_(1 - m).add_(mean.mul(m));
        runningVar.mul_(1 - m).add_(variance.mul((m * count) / (count - 1)));
      }),
    ));
  }
  const out = untraced(() => affine(xc, scale, shift, backend));
  const needX = x.requiresGrad;
  // Read now, not in backward: weight/bias views disposed by tidy() no longer report requiresGrad then.
  const needWeight = weight?.requiresGrad ?? false;
  const needBias = bias?.requiresGrad ?? false;
  const saved = [xc, mean, invStd, scale];
  const result = finish(out, 'batchNorm', tracedInputs, { training, eps }, saved, (g, [sx, smean, sinv, sscale]) => {
    const g3 = as3d(g.contiguous(), C);
    const x3s = as3d(sx!, C);
    const sumDy = empty([C], 'float32', backend);
    const sumDyXhat = empty([C], 'float32', backend);
    backend.batchNormBackwardReduce(g3, x3s, smean!._view(), sinv!._view(), sumDy._view(), sumDyXhat._view());
    let dx: Tensor | null = null;
    if (needX) {
      dx = empty(x.shape, x.dtype, backend);
      backend.batchNormBackwardInput(g3, x3s, smean!._view(), sinv!._view(), sscale!._view(), sumDy._view(), sumDyXhat._view(), as3d(dx, C));
    }
    return [dx, needWeight ? sumDyXhat : null, needBias ? sumDy : null, null, null];
  });
  if (xc !== x) xc.dispose();
  for (const t of [mean, variance, invStd, scale, shift]) t.dispose();
  return result;
}

/** A contiguous [N, C, ...] tensor seen as [N, C, S]. */
function as3d(t: Tensor, C: number): View {
  const v = t._view();
  const N = t.shape[0]!;
  const S = t.numel() / Math.max(N * C, 1);
  return { ...v, shape: [N, C, S], strides: [C * S, S, 1] };
}

function affine(x: Tensor, scale: Tensor, shift: Tensor, backend: Backend): Tensor {
  const xc = x.contiguous();
  const out = empty(x.shape, x.dtype, backend);
  if (out.numel() > 0) backend.channelAffine(as3d(xc, scale.shape[0]!), scale._view(), shift._view(), as3d(out, scale.shape[0]!));
  if (xc !== x) xc.dispose();
  return out;
}

/** g * scale[c] (+ shift[c]) as a fresh tensor: eval-mode batch norm's input gradient. */
function affineOf(g: Tensor, scale: Tensor, shift: Tensor | null, backend: Backend): Tensor {
  const zero = shift ?? noGrad(() => scale.mul(0));
  const r = affine(g, scale, zero, backend);
  if (!shift) zero.dispose();
  return r;
}
