// Folds an eval-mode BatchNorm into the convolution before it:
//
//   bn(conv(x)) = (W*x + b - mean) * g/sqrt(var+eps) + beta
//               = (W * s) * x + ((b - mean) * s + beta),   s = g/sqrt(var+eps)
//
// so inference runs one conv (with bias, residual and ReLU in its epilogue)
// instead of conv + four elementwise passes. W, b and the BatchNorm tensors
// are the modules' effective tensors (Module.effectiveTensor): what their
// forward pre-hooks make of them, e.g. a pruned conv's weight_orig *
// weight_mask, never a parameter read behind the module's back. Folded
// tensors are cached per BatchNorm and rebuilt when any source tensor is
// replaced (identity; a pruned weight is re-derived, so replaced, whenever
// weight_orig or weight_mask change) or modified in place (its storage
// version), e.g. by an optimizer step or loadStateDict, or re-pointed at
// other memory (set_, Module.to), so they can never go stale.
import { KilnError, noGrad, tidy, keep, type Tensor } from '@kiln/core';
import type { BatchNorm2d, Conv2d } from '@kiln/nn';

/** A conv with its BatchNorm folded in: what the fused forward passes to conv2d. */
export interface FoldedConv {
  /** The conv weight scaled by gamma / sqrt(var + eps), per output channel. */
  weight: Tensor;
  /** The folded bias: beta - mean * gamma / sqrt(var + eps) (plus the conv bias scaled the same way, when there is one). */
  bias: Tensor;
}

interface CacheEntry extends FoldedConv {
  sources: (Tensor | null)[];
  /** Per source: its dataPtr, offset and version when folded. */
  states: (readonly [number, number, number] | null)[];
  eps: number;
}

/**
 * What identifies a source's contents besides its identity: the memory it
 * views (set_(), used by Module.to, re-points it), where, and the version
 * counter that in-place writes bump.
 */
function stateOf(t: Tensor | null): readonly [number, number, number] | null {
  return t && ([t.dataPtr(), t.offset, t.version] as const);
}

const cache = new WeakMap<BatchNorm2d, CacheEntry>();

/** [conv weight, conv bias, bn weight, bn bias, running mean, running var] as forward would use them. */
function sourcesOf(conv: Conv2d, bn: BatchNorm2d): (Tensor | null)[] {
  // Without grad mode a derived weight is reused while its sources are unchanged.
  return noGrad(() => [
    conv.effectiveTensor('weight'),
    conv.effectiveTensor('bias'),
    bn.effectiveTensor('weight'),
    bn.effectiveTensor('bias'),
    bn.effectiveTensor('running_mean'),
    bn.effectiveTensor('running_var'),
  ]);
}

function isCurrent(e: CacheEntry, sources: (Tensor | null)[], eps: number): boolean {
  return (
    e.eps === eps &&
    !e.weight.isDisposed &&
    sources.every((t, i) => {
      if (t !== e.sources[i]) return false;
      if (t === null) return true;
      const [ptr, offset, version] = e.states[i]!;
      const now = stateOf(t)!;
      return !t.isDisposed && now[0] === ptr && now[1] === offset && now[2] === version;
    })
  );
}

/** True when `bn` can be folded: eval mode with running statistics. */
export function canFold(bn: BatchNorm2d): boolean {
  return !bn.training && bn.running_mean !== null && bn.running_var !== null;
}

/**
 * `conv` followed by eval-mode `bn` as one conv's weight and bias, cached
 * until a source tensor changes. Computed on the tensors' device, without
 * autograd, from the modules' effective tensors (a pruned conv's masked weight).
 */
export function foldConvBn(conv: Conv2d, bn: BatchNorm2d): FoldedConv {
  const sources = sourcesOf(conv, bn);
  const hit = cache.get(bn);
  if (hit && isCurrent(hit, sources, bn.eps)) return hit;
  releaseFolded(bn);
  const [convWeight, convBias, bnWeight, bnBias, runningMean, runningVar] = sources;
  if (!convWeight || !runningMean || !runningVar) throw new KilnError('foldConvBn', `${conv._getName()} has no weight or ${bn._getName()} no running statistics to fold`);
  const { weight, bias } = noGrad(() =>
    tidy(() => {
      const out = convWeight.shape[0]!;
      let scale = runningVar.add(bn.eps).rsqrt();
      if (bnWeight) scale = scale.mul(bnWeight);
      const w = convWeight.mul(scale.reshape([out, 1, 1, 1]));
      let b = (convBias ? convBias.sub(runningMean) : runningMean.neg()).mul(scale);
      if (bnBias) b = b.add(bnBias);
      return { weight: w, bias: b };
    }),
  );
  keep(weight);
  keep(bias);
  const entry: CacheEntry = { weight, bias, sources, states: sources.map(stateOf), eps: bn.eps };
  cache.set(bn, entry);
  return entry;
}

/** Disposes the folded copy cached for `bn`, if any (it is rebuilt on next use). */
export function releaseFolded(bn: BatchNorm2d): void {
  const e = cache.get(bn);
  if (!e) return;
  cache.delete(bn);
  e.weight.dispose();
  e.bias.dispose();
}
