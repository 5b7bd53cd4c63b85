// Folds an eval-mode BatchNorm into the convolution before it:
//
//   bn(conv(x)) = (W*x + b - mean) * g/sqrt(var+eps) + beta
//               = (W * s) * x + ((b - mean) * s + beta),   s = g/sqrt(var+eps)
//
// so inference runs one conv (with bias, residual and ReLU in its epilogue)
// instead of conv + four elementwise passes. Folded tensors are cached per
// BatchNorm and rebuilt when any source tensor is replaced (identity) or
// modified in place (its storage version), e.g. by an optimizer step or
// loadStateDict, so they can never go stale.
import { noGrad, tidy, keep, type Tensor } from '@kiln/core';
import type { BatchNorm2d, Conv2d } from '@kiln/nn';

/** A conv with its BatchNorm folded in: what the fused forward passes to conv2d. */
export interface FoldedConv {
  weight: Tensor;
  bias: Tensor;
}

interface CacheEntry extends FoldedConv {
  sources: (Tensor | null)[];
  versions: number[];
  eps: number;
}

const cache = new WeakMap<BatchNorm2d, CacheEntry>();

function sourcesOf(conv: Conv2d, bn: BatchNorm2d): (Tensor | null)[] {
  return [conv.weight, conv.bias, bn.weight, bn.bias, bn.running_mean, bn.running_var];
}

function isCurrent(e: CacheEntry, sources: (Tensor | null)[], eps: number): boolean {
  return (
    e.eps === eps &&
    !e.weight.isDisposed &&
    sources.every((t, i) => t === e.sources[i] && (t === null || (!t.isDisposed && t.version === e.versions[i])))
  );
}

/** True when `bn` can be folded: eval mode with running statistics. */
export function canFold(bn: BatchNorm2d): boolean {
  return !bn.training && bn.running_mean !== null && bn.running_var !== null;
}

/**
 * `conv` followed by eval-mode `bn` as one conv's weight and bias, cached
 * until a source tensor changes. Computed on the tensors' device, without autograd.
 */
export function foldConvBn(conv: Conv2d, bn: BatchNorm2d): FoldedConv {
  const sources = sourcesOf(conv, bn);
  const hit = cache.get(bn);
  if (hit && isCurrent(hit, sources, bn.eps)) return hit;
  releaseFolded(bn);
  const { weight, bias } = noGrad(() =>
    tidy(() => {
      const out = conv.outChannels;
      let scale = bn.running_var!.add(bn.eps).rsqrt();
      if (bn.weight) scale = scale.mul(bn.weight);
      const w = conv.weight.mul(scale.reshape([out, 1, 1, 1]));
      let b = (conv.bias ? conv.bias.sub(bn.running_mean!) : bn.running_mean!.neg()).mul(scale);
      if (bn.bias) b = b.add(bn.bias);
      return { weight: w, bias: b };
    }),
  );
  keep(weight);
  keep(bias);
  const entry: CacheEntry = { weight, bias, sources, versions: sources.map((t) => t?.version ?? 0), eps: bn.eps };
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
