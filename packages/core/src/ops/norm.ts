import { Tensor } from '../tensor.js';
import { checkAlive } from './util.js';
import { DTypeError, KilnError, ShapeError, fmtShape } from '../errors.js';
import { noGrad } from '../autograd/grad-mode.js';
import { tidy } from '../memory.js';

/** Options of batchNorm, as torch.nn.functional.batch_norm. */
export interface BatchNormOptions {
  weight?: Tensor | null;
  bias?: Tensor | null;
  /** Batch statistics (true) or running statistics (false). */
  training?: boolean;
  /** Running-stat update factor; null means a cumulative average (PyTorch's momentum=None, needs numBatchesTracked). */
  momentum?: number | null;
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
  if (x.dtype !== 'float32') throw new DTypeError('batchNorm', `expected float32 input, got ${x.dtype}`);
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
  return tidy(() => {
    let mean: Tensor;
    let invStd: Tensor;
    if (training) {
      mean = x.mean(dims, true);
      const biasedVar = x.sub(mean).square().mean(dims, true);
      invStd = biasedVar.add(eps).rsqrt();
      if (runningMean && runningVar) {
        noGrad(() => {
          const m = opts.momentum === null ? 1 / ((opts.numBatchesTracked ?? 0) + 1) : (opts.momentum ?? 0.1);
          runningMean.mul_(1 - m).add_(mean.reshape([C]).mul(m));
          runningVar.mul_(1 - m).add_(biasedVar.reshape([C]).mul((m * count) / (count - 1)));
        });
      }
    } else {
      mean = runningMean!.reshape(bshape);
      invStd = runningVar!.add(eps).rsqrt().reshape(bshape);
    }
    let y = x.sub(mean).mul(invStd);
    if (opts.weight) y = y.mul(opts.weight.reshape(bshape));
    if (opts.bias) y = y.add(opts.bias.reshape(bshape));
    return y;
  });
}
