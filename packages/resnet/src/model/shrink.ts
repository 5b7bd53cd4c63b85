// Channel pruning that really shrinks ResNet: torch.nn.utils.prune only
// zeroes weights, so a masked model keeps its size and speed. This is the
// structural step torch-pruning's dependency graph takes, for the channels
// whose dependencies are local: the inner channels of each BasicBlock,
// conv1's outputs = bn1's channels = conv2's inputs. (The block's outer
// channels are tied to every other block of the stage by the skip
// connections, so they stay.) A removed channel must carry exactly zero
// after bn1 + ReLU in the masked model — conv1's filter and bn1's weight and
// bias all zero, what pruneInnerChannels masks — so the shrunk model
// computes the masked model's function, only with smaller convs.
import { KilnError, indexSelect, noGrad, tensor, tidy } from '@kiln/core';
import { BatchNorm2d, Conv2d, prune, skipInit, type Module, type StateDict } from '@kiln/nn';
import { BasicBlock, conv3x3 } from './basic-block.js';
import type { ResNet } from './resnet.js';

/** The BasicBlocks of `model` with their dotted names (`layer1.0`, ...). */
function blocksOf(model: ResNet): [string, BasicBlock][] {
  return model.namedModules().filter((e): e is [string, BasicBlock] => e[1] instanceof BasicBlock);
}

/**
 * Prunes the `amount` inner channels of each BasicBlock with the smallest
 * Ln norm of their conv1 filter (`prune.lnStructured(block.conv1, 'weight',
 * amount, n, 0)`), and masks the same channels of bn1's weight and bias, so
 * they output exactly zero: the masked model {@link shrinkInnerChannels}
 * turns into a smaller one. PyTorch-compatible masks and state-dict keys.
 */
export async function pruneInnerChannels(model: ResNet, amount: prune.PruneAmount, opts: { n?: number } = {}): Promise<void> {
  for (const [, block] of blocksOf(model)) {
    await prune.lnStructured(block.conv1, 'weight', amount, opts.n ?? 2, 0);
    const zero = await zeroChannels(block.conv1, 'weight');
    const mask = tensor(zero.map((z) => (z ? 0 : 1)), { dtype: 'float32', device: block.bn1.weight?.device ?? undefined });
    if (block.bn1.affine) {
      await prune.customFromMask(block.bn1, 'weight', mask);
      await prune.customFromMask(block.bn1, 'bias', mask);
    }
    mask.dispose();
  }
}

/** Per output channel of `m[name]` as forward uses it: whether it is all zero. */
async function zeroChannels(m: Module, name: string): Promise<boolean[]> {
  const w = noGrad(() => m.effectiveTensor(name));
  if (!w) throw new KilnError('shrinkInnerChannels', `${m._getName()} has no ${name}`);
  const sums = tidy(() => (w.dim() > 1 ? w.abs().sum(Array.from({ length: w.dim() - 1 }, (_, i) => i + 1)) : w.abs()));
  const v = await sums.toArray();
  sums.dispose();
  return Array.from(v, (s) => s === 0);
}

/** What {@link shrinkInnerChannels} did. */
export interface ShrinkResult {
  /** Inner channels kept per block, e.g. `{ 'layer1.0': 45, ... }`. */
  widths: Record<string, number>;
  /** Parameters before shrinking (PyTorch's sum of numel). */
  parametersBefore: number;
  /** Parameters after shrinking. */
  parametersAfter: number;
}

const countParams = (m: Module) => m.parameters().reduce((n, p) => n + p.numel(), 0);

/**
 * Physically removes each BasicBlock's inner channels that carry exactly
 * zero: conv1's output channels whose (effective, masked) filter is all zero
 * and whose bn1 weight and bias are zero, with bn1's matching channels and
 * conv2's matching input channels. conv1, bn1 and conv2 are replaced in
 * place by smaller, unpruned modules holding the effective values (any mask
 * on them is made permanent, as prune.remove does); everything else is
 * untouched. The result is a plain ResNet with narrower blocks: same
 * outputs as the masked model within float32 rounding, trainable (build the
 * optimizer after shrinking), saved and loaded as a state dict (load it
 * into `withInnerWidths(resnet18(), innerWidths(stateDict))`).
 * @throws KilnError when a zeroed conv1 channel would still output a nonzero constant (bn1 not zeroed there).
 */
export async function shrinkInnerChannels(model: ResNet): Promise<ShrinkResult> {
  const parametersBefore = countParams(model);
  const widths: Record<string, number> = {};
  for (const [name, block] of blocksOf(model)) {
    const zero = await zeroChannels(block.conv1, 'weight');
    const bnWeight = block.bn1.affine ? await zeroChannels(block.bn1, 'weight') : zero.map(() => false);
    const bnBias = block.bn1.affine ? await zeroChannels(block.bn1, 'bias') : zero.map(() => false);
    const keep: number[] = [];
    zero.forEach((z, c) => {
      if (!z) keep.push(c);
      else if (!bnWeight[c] || !bnBias[c]) {
        throw new KilnError('shrinkInnerChannels', `channel ${c} of ${name}.conv1 is zero but ${name}.bn1 (weight ${bnWeight[c] ? 0 : '≠ 0'}, bias ${bnBias[c] ? 0 : '≠ 0'}) would still output a constant there; prune bn1's weight and bias on the same channels (pruneInnerChannels does)`);
      }
    });
    // A block keeps at least one channel (its contribution is zero, but convs need a channel).
    if (keep.length === 0) keep.push(0);
    replaceInner(block, keep);
    widths[name] = keep.length;
  }
  return { widths, parametersBefore, parametersAfter: countParams(model) };
}

/** Swaps conv1 / bn1 / conv2 of `block` for modules over the channels `keep`, holding the effective values. */
function replaceInner(block: BasicBlock, keep: number[]): void {
  const { conv1, bn1, conv2 } = block;
  const device = conv2.effectiveTensor('weight')!.device;
  block.releaseFolded();
  const [c1, b1, c2] = innerModules(block, keep.length, device);
  noGrad(() =>
    tidy(() => {
      const idx = tensor(keep, { dtype: 'int32', device });
      c1.weight.copy_(indexSelect(conv1.effectiveTensor('weight')!, 0, idx));
      c2.weight.copy_(indexSelect(conv2.effectiveTensor('weight')!, 1, idx));
      for (const key of ['weight', 'bias', 'running_mean', 'running_var'] as const) {
        const src = bn1.effectiveTensor(key);
        const dst = b1.effectiveTensor(key);
        if (src && dst) dst.copy_(indexSelect(src, 0, idx));
      }
      if (bn1.num_batches_tracked && b1.num_batches_tracked) b1.num_batches_tracked.copy_(bn1.num_batches_tracked);
    }),
  );
  b1.train(bn1.training);
  setInner(block, c1, b1, c2);
  for (const m of [conv1, bn1, conv2]) m.dispose();
}

/** Replaces the children in place, keeping their order (and so torchvision's state-dict key order). */
function setInner(block: BasicBlock, conv1: Conv2d, bn1: BatchNorm2d, conv2: Conv2d): void {
  block._modules.set('conv1', conv1);
  block._modules.set('bn1', bn1);
  block._modules.set('conv2', conv2);
}

/** Fresh (uninitialised) conv1, bn1, conv2 for `block` with `width` inner channels. */
function innerModules(block: BasicBlock, width: number, device: string): [Conv2d, BatchNorm2d, Conv2d] {
  const { conv1, bn1, conv2 } = block;
  return skipInit(() => [
    conv3x3(conv1.inChannels, width, conv1.stride[0], device),
    new BatchNorm2d(width, { eps: bn1.eps, momentum: bn1.momentum, affine: bn1.affine, trackRunningStats: bn1.trackRunningStats, device }),
    conv3x3(width, conv2.outChannels, 1, device),
  ]);
}

/** Inner channels per BasicBlock of a model, or of a state dict (the shape of `<block>.conv1.weight`). */
export function innerWidths(source: ResNet | StateDict): Record<string, number> {
  const out: Record<string, number> = {};
  if (typeof (source as ResNet).namedModules === 'function') {
    for (const [name, block] of blocksOf(source as ResNet)) out[name] = block.conv1.outChannels;
    return out;
  }
  for (const [key, t] of Object.entries(source as StateDict)) {
    const m = /^(layer[1-4]\.\d+)\.conv1\.weight(_orig)?$/.exec(key);
    if (m) out[m[1]!] = t.shape[0]!;
  }
  return out;
}

/**
 * Gives each named BasicBlock of `model` `widths[name]` inner channels
 * (fresh conv1 / bn1 / conv2, to be loaded): the model a shrunk state dict
 * loads into, e.g. `withInnerWidths(resnet18(), innerWidths(sd)).loadStateDict(sd)`.
 */
export function withInnerWidths(model: ResNet, widths: Record<string, number>): ResNet {
  for (const [name, block] of blocksOf(model)) {
    const w = widths[name];
    if (w === undefined || w === block.conv1.outChannels) continue;
    if (!Number.isInteger(w) || w < 1) throw new KilnError('withInnerWidths', `width of ${name} must be a positive integer, got ${w}`);
    const device = block.conv1.weight.device;
    block.releaseFolded();
    const old = [block.conv1, block.bn1, block.conv2];
    const [c1, b1, c2] = innerModules(block, w, device);
    b1.resetParameters();
    b1.train(block.training);
    setInner(block, c1, b1, c2);
    for (const m of old) m.dispose();
  }
  return model;
}

