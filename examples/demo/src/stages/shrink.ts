import { pruneInnerChannels, shrinkInnerChannels, type ResNet } from '@kiln/resnet';
import type { DemoContext } from '../context.js';
import type { DemoResult } from '../results.js';
import { evaluate, pct } from '../train-loop.js';
import { cloneResNet, recipeFineTune } from './prune.js';

/** Name of the channel-shrunk variant in the tables. */
export const SHRUNK_VARIANT = 'channel-shrunk (fine-tuned)';

/**
 * The inner-channel fraction actually removed: `amount` rounded to a
 * multiple of 1/8. ResNet18's inner widths are 64·2^k, so every block then
 * keeps a multiple of 8 channels (25 %: 48, 96, 192, 384), the widths the
 * GEMM and conv kernels tile without a ragged edge; odd widths made an
 * earlier 30 % shrink slower than the dense model (0.87× at batch 8).
 */
export function roundedShrinkAmount(amount: number): number {
  return Math.min(7, Math.max(1, Math.round(amount * 8))) / 8;
}

type Shrunk = NonNullable<NonNullable<DemoResult['pruning']>['shrunk']>;

/**
 * Stage 4, structured half: a copy of the fine-tuned model with the
 * smallest-L2 inner channels of every BasicBlock pruned
 * (`pruneInnerChannels`, i.e. `prune.ln_structured(conv1, 'weight', amount,
 * 2, 0)` with bn1 masked on the same channels) and then physically removed
 * (`shrinkInnerChannels`): a plain, narrower resnet18. Accuracy right after
 * shrinking and after a short fine-tune with the transfer recipe. The
 * caller measures its parameters, latency and accuracy as a variant.
 */
export async function shrinkStage(ctx: DemoContext, model: ResNet): Promise<{ result: Omit<Shrunk, 'msPerImage' | 'fp32MsPerImage'>; model: ResNet }> {
  const { opts, io, device, target } = ctx;
  const amount = roundedShrinkAmount(opts.shrinkAmount);
  const epochs = Math.max(1, Math.round(opts.epochs / 4));
  io.log(`  channel shrinking: ${pct(amount)} of every BasicBlock's inner channels (smallest L2 filters of conv1)${amount !== opts.shrinkAmount ? `, --shrink-amount ${opts.shrinkAmount} rounded to a multiple of 1/8` : ''}, removed, then ${epochs} fine-tuning epoch${epochs > 1 ? 's' : ''}`);
  const shrunk = cloneResNet(model, device);
  await pruneInnerChannels(shrunk, amount);
  const s = await shrinkInnerChannels(shrunk);
  shrunk.eval();
  const before = await evaluate(shrunk, target.test, 64, ctx.pipe, device, io, 'shrunk eval');
  const kept = [...new Set(Object.values(s.widths))].join('/');
  io.log(`  inner widths ${kept}: ${s.parametersAfter.toLocaleString('en-US')} parameters (was ${s.parametersBefore.toLocaleString('en-US')}); test top-1 ${pct(before.top1)} before fine-tuning`);
  const records = await recipeFineTune(ctx, shrunk, 'shrunk fine-tune', epochs, 8);
  const top1 = records.at(-1)!.top1;
  io.log(`  after fine-tuning: test top-1 ${pct(top1)}`);
  return { result: { amount, widths: s.widths, params: s.parametersAfter, paramsBefore: s.parametersBefore, beforeFinetune: before.top1, top1 }, model: shrunk };
}
