import { Conv2d, Linear, prune, type Module } from '@kiln/nn';
import { freezeBatchNorm, resnet18, type ResNet } from '@kiln/resnet';
import type { Tensor } from '@kiln/core';
import type { DemoContext } from '../context.js';
import type { DemoResult } from '../results.js';
import { evaluate, pct, type EpochRecord } from '../train-loop.js';
import { seedRecipeOptimizer, trainSeedRecipe } from './transfer.js';

/** Name of the pruned variant in the tables (the bars look it up). */
export const PRUNED_VARIANT = 'pruned (fine-tuned)';

/** A copy of a ResNet with its own tensors (the state dict loaded into a fresh model of the same shape). */
export function cloneResNet(model: ResNet, device: string): ResNet {
  const copy = resnet18({ numClasses: (model.fc as Linear).outFeatures, device });
  const sd = model.stateDict() as Record<string, Tensor>;
  copy.loadStateDict(sd);
  for (const t of Object.values(sd)) t.dispose();
  return copy.eval();
}

/**
 * A short fine-tune with the transfer recipe (everything frozen but layer4
 * and fc, SGD groups layer4 1e-3 / fc 1e-2, momentum 0.9, warm-up then
 * cosine, frozen BatchNorm in eval mode) on the target training images;
 * `rngStage` and `rngStage + 1` seed its initialisation and data order.
 * Returns one record per epoch (test accuracy after each).
 */
export async function recipeFineTune(ctx: DemoContext, model: ResNet, label: string, epochs: number, rngStage: number): Promise<EpochRecord[]> {
  const { io, target } = ctx;
  ctx.rng(rngStage);
  const opt = seedRecipeOptimizer(model);
  const frozen = freezeBatchNorm(model);
  try {
    return await trainSeedRecipe(ctx, model, opt, label, epochs, rngStage + 1);
  } finally {
    opt.dispose();
    frozen.release();
    model.eval();
  }
}

/** Every conv and linear weight: what global pruning ranks together. */
const prunable = (m: Module) => m.modules().filter((x) => x instanceof Conv2d || x instanceof Linear).map((x) => [x, 'weight'] as const);

/**
 * Stage 4: global L1 unstructured pruning of every conv and linear weight
 * of a copy of the fine-tuned model (`prune.globalUnstructured(...,
 * prune.L1Unstructured, { amount })`, as torch.nn.utils.prune), accuracy
 * before and after a short fine-tune (the transfer recipe for a quarter of
 * its epochs, at least one; masked weights stay zero through the pruning
 * hook), then `prune.remove` to make it permanent.
 */
export async function pruneStage(ctx: DemoContext, model: ResNet): Promise<{ result: NonNullable<DemoResult['pruning']>; model: ResNet }> {
  const { opts, io, device, target } = ctx;
  const epochs = Math.max(1, Math.round(opts.epochs / 4));
  io.log(`[4/7] pruning: global L1 unstructured, ${pct(opts.pruneAmount)} of every conv and linear weight, then ${epochs} fine-tuning epoch${epochs > 1 ? 's' : ''}`);
  const pruned = cloneResNet(model, device);
  const params = prunable(pruned);
  await prune.globalUnstructured(params, prune.L1Unstructured, { amount: opts.pruneAmount });
  const report = await prune.sparsity(pruned, params);
  const before = await evaluate(pruned, target.test, 64, ctx.pipe, device, io, 'pruned eval');
  io.log(`  global sparsity ${pct(report.global.fraction)}; test top-1 ${pct(before.top1)} before fine-tuning`);

  const records = await recipeFineTune(ctx, pruned, 'prune fine-tune', epochs, 6);
  for (const [m, name] of params) prune.remove(m, name);
  pruned.eval();
  const after = records.at(-1)!.top1;
  io.log(`  after fine-tuning: test top-1 ${pct(after)}`);
  return {
    result: { amount: opts.pruneAmount, sparsity: report.global.fraction, beforeFinetune: before.top1, top1: after, nonzero: report.global.numel - report.global.zeros, prunableWeights: report.global.numel },
    model: pruned,
  };
}
