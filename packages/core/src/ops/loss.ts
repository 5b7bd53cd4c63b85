import { Tensor } from '../tensor.js';
import { needsAutocast, withAutocast } from '../autocast/autocast.js';
import { isFloating } from '../dtype.js';
import { checkAlive } from './util.js';
import { DTypeError, KilnError, ShapeError, fmtShape } from '../errors.js';
import { tidy } from '../memory.js';
import { where } from './binary.js';
import { broadcastShapes } from '../shape.js';

/** How per-element losses are combined, as PyTorch's `reduction`. */
export type Reduction = 'mean' | 'sum' | 'none';

/** Options of nllLoss / crossEntropy. */
export interface NllOptions {
  /** Per-class weights [C]. */
  weight?: Tensor | null;
  /** Targets equal to this contribute nothing (default -100). */
  ignoreIndex?: number;
  /** 'mean' (default), 'sum' or 'none'. */
  reduction?: Reduction;
}

/** Options of crossEntropy: nllLoss's plus label smoothing. */
export interface CrossEntropyOptions extends NllOptions {
  /** Mass moved from the target class to a uniform distribution, 0..1. Default 0. */
  labelSmoothing?: number;
}

function checkReduction(op: string, r: string): Reduction {
  if (r !== 'mean' && r !== 'sum' && r !== 'none') throw new KilnError(op, `${r} is not a valid value for reduction (mean, sum, none)`);
  return r;
}

function checkClassTarget(op: string, input: Tensor, target: Tensor): void {
  if (isFloating(target.dtype)) throw new DTypeError(op, `expected an integer class-index target, got ${target.dtype}`);
  const expected = [input.shape[0]!, ...input.shape.slice(2)];
  if (input.dim() === 1 ? target.dim() !== 0 : target.shape.join() !== expected.join()) {
    throw new ShapeError(op, `expected target of shape ${fmtShape(input.dim() === 1 ? [] : expected)} for input ${fmtShape(input.shape)}, got ${fmtShape(target.shape)}`);
  }
}

/**
 * Negative log-likelihood of class targets given log-probabilities
 * [N, C, ...] (or [C] with a scalar target). Mean reduction divides by the
 * summed weights of non-ignored targets, as PyTorch.
 */
export function nllLoss(logProbs: Tensor, target: Tensor, opts: NllOptions = {}): Tensor {
  if (needsAutocast('nllLoss', [logProbs, target, opts])) return withAutocast('nllLoss', [logProbs, target, opts], nllLoss);
  checkAlive('nllLoss', logProbs, target, opts.weight);
  return nllLossAs('nllLoss', logProbs, target, opts);
}

/** nllLoss whose errors name `op` (crossEntropy delegates here). */
function nllLossAs(op: string, logProbs: Tensor, target: Tensor, opts: NllOptions): Tensor {
  const reduction = checkReduction(op, opts.reduction ?? 'mean');
  if (logProbs.dim() === 1) {
    if (target.dim() !== 0) throw new ShapeError(op, `expected a 0-D target for 1-D input ${fmtShape(logProbs.shape)}, got ${fmtShape(target.shape)}`);
    return tidy(() => nllLossAs(op, logProbs.unsqueeze(0), target.reshape([1]), opts).reshape([]));
  }
  if (logProbs.dim() < 2) throw new ShapeError(op, `expected input of shape [N, C, ...], got ${fmtShape(logProbs.shape)}`);
  checkClassTarget(op, logProbs, target);
  const C = logProbs.shape[1]!;
  if (opts.weight && (opts.weight.dim() !== 1 || opts.weight.shape[0] !== C)) throw new ShapeError(op, `expected weight of shape [${C}], got ${fmtShape(opts.weight.shape)}`);
  const ignore = opts.ignoreIndex ?? -100;
  return tidy(() => {
    const t = target.to('int32');
    const valid = t.ne(ignore);
    const safeT = where(valid, t, 0);
    const picked = logProbs.gather(1, safeT.unsqueeze(1)).squeeze(1);
    let w = valid.to('float32');
    if (opts.weight) w = w.mul(opts.weight.indexSelect(0, safeT.reshape([-1])).reshape(safeT.shape));
    const losses = picked.mul(w).neg();
    if (reduction === 'none') return losses;
    if (reduction === 'sum') return losses.sum();
    // With every target ignored the mean is 0/0: NaN as PyTorch, but with
    // zero (not NaN) gradients, so the division must not see a zero.
    const total = w.sum();
    const empty = total.eq(0);
    return losses.sum().div(where(empty, 1, total)).add(where(empty, NaN, 0));
  });
}

/**
 * Cross entropy of logits [N, C, ...] against class indices (or class
 * probabilities of the input's shape), through a stable logSoftmax;
 * label smoothing as torch.nn.functional.cross_entropy.
 */
export function crossEntropy(input: Tensor, target: Tensor, opts: CrossEntropyOptions = {}): Tensor {
  if (needsAutocast('crossEntropy', [input, target, opts])) return withAutocast('crossEntropy', [input, target, opts], crossEntropy);
  checkAlive('crossEntropy', input, target, opts.weight);
  const reduction = checkReduction('crossEntropy', opts.reduction ?? 'mean');
  const eps = opts.labelSmoothing ?? 0;
  if (!(eps >= 0 && eps <= 1)) throw new KilnError('crossEntropy', `label_smoothing must be between 0.0 and 1.0, got ${eps}`);
  if (!isFloating(input.dtype)) throw new DTypeError('crossEntropy', `expected float logits, got ${input.dtype}`);
  const classDim = input.dim() === 1 ? 0 : 1;
  const C = input.shape[classDim]!;
  const wShape = input.shape.map((s, i) => (i === classDim ? s : 1));
  return tidy(() => {
    const logp = input.logSoftmax(classDim);
    if (isFloating(target.dtype)) {
      // Probability targets.
      if (target.shape.join() !== input.shape.join()) throw new ShapeError('crossEntropy', `probability targets must have the input's shape ${fmtShape(input.shape)}, got ${fmtShape(target.shape)}`);
      let t = eps > 0 ? target.mul(1 - eps).add(eps / C) : target;
      if (opts.weight) t = t.mul(opts.weight.reshape(wShape));
      const losses = logp.mul(t).sum(classDim).neg();
      if (reduction === 'none') return losses;
      if (reduction === 'sum') return losses.sum();
      return losses.sum().div(input.dim() === 1 ? 1 : input.numel() / C);
    }
    const nll = nllLossAs('crossEntropy', logp, target, { ...opts, reduction });
    if (eps === 0) return nll;
    const ignore = target.to('int32').eq(opts.ignoreIndex ?? -100);
    let smooth = (opts.weight ? logp.mul(opts.weight.reshape(wShape)) : logp).sum(classDim).neg();
    smooth = where(ignore, 0, smooth);
    let ret: Tensor;
    if (reduction === 'none') ret = smooth;
    else if (reduction === 'sum') ret = smooth.sum();
    else if (opts.weight) {
      const valid = ignore.logicalNot();
      const tw = opts.weight.indexSelect(0, where(valid, target.to('int32'), 0).reshape([-1])).mul(valid.reshape([-1]));
      ret = smooth.sum().div(tw.sum());
    } else ret = smooth.sum().div(ignore.logicalNot().sum());
    return nll.mul(1 - eps).add(ret.mul(eps / C));
  });
}

/** Mean squared error, as torch.nn.functional.mse_loss (broadcasting allowed). */
export function mseLoss(input: Tensor, target: Tensor, opts: { reduction?: Reduction } = {}): Tensor {
  if (needsAutocast('mseLoss', [input, target, opts])) return withAutocast('mseLoss', [input, target, opts], mseLoss);
  checkAlive('mseLoss', input, target);
  const reduction = checkReduction('mseLoss', opts.reduction ?? 'mean');
  broadcastShapes('mseLoss', input.shape, target.shape);
  return tidy(() => {
    const l = input.sub(target).square();
    return reduction === 'none' ? l : reduction === 'sum' ? l.sum() : l.mean();
  });
}
