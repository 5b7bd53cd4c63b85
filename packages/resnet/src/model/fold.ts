// Folds an eval-mode BatchNorm into the convolution before it:
//
//   bn(conv(x)) = (W*x + b - mean) * g/sqrt(var+eps) + beta
//               = (W * s) * x + ((b - mean) * s + beta),   s = g/sqrt(var+eps)
//
// so inference runs one conv (with bias, residual and ReLU in its epilogue)
// instead of conv + four elementwise passes. Folded tensors are cached per
// BatchNorm and rebuilt when any source tensor is replaced (identity) or
// modified in place (its storage version), e.g. by an optimizer step or
// loadStateDict, or re-pointed at other memory (set_, Module.to), so they
// can never go stale.
import { noGrad, tidy, keep, type Tensor } from '@kiln/core';
import type { BatchNorm2d, Conv2d } from '@kiln/nn';

/** A conv with its BatchNorm folded in: what the fused forward passes to conv2d. */
export interface FoldedConv {
  weight: Tensor;
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

function sourcesOf(conv: Conv2d, bn: BatchNorm2d): (Tensor | null)[] {
  return [conv.weight, conv.bias, bn.weight, bn.bias, bn.running_mean, bn.running_var];
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
