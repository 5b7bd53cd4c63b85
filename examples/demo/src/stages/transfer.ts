import { FormatError } from '@kiln/core';
import { Linear, optim } from '@kiln/nn';
import { freezeBatchNorm, loadWeights, readWeights, resnet18, type ResNet } from '@kiln/resnet';
import { readFile } from 'node:fs/promises';
import type { DemoContext } from '../context.js';
import type { TrainingResult } from '../results.js';
import { trainModel } from '../train-loop.js';
import { trainableBatchNorms } from '../batchnorm-stats.js';
import { FROM_SCRATCH_SGD } from './pretrain.js';

/** The seed's fine-tuning optimiser: layer4 at 1e-3, the new fc at 1e-2, momentum 0.9. */
export const TRANSFER_LR = { layer4: 1e-3, fc: 1e-2, momentum: 0.9 } as const;

/**
 * The seed's fine-tuning set-up on `model`: everything frozen but layer4 and
 * fc, and SGD with one parameter group each (layer4 lr 1e-3, fc lr 1e-2,
 * momentum 0.9). The caller disposes the optimizer.
 */
export function seedRecipeOptimizer(model: ResNet): optim.SGD {
  model.requiresGrad_(false);
  model.layer4.requiresGrad_(true);
  model.fc.requiresGrad_(true);
  return new optim.SGD(
    [
      { params: model.layer4.parameters(), lr: TRANSFER_LR.layer4 },
      { params: model.fc.parameters(), lr: TRANSFER_LR.fc },
    ],
    { lr: TRANSFER_LR.fc, momentum: TRANSFER_LR.momentum },
  );
}

/** A fresh resnet18 loaded from a checkpoint, whatever its number of classes (read from `fc.weight`). */
export async function loadBackbone(path: string, device: string): Promise<ResNet> {
  const bytes = new Uint8Array(await readFile(path));
  const fc = readWeights(bytes, { source: `'${path}'` }).get('fc.weight');
  if (!fc || fc.shape.length !== 2) throw new FormatError('loadBackbone', `'${path}' has no fc.weight [classes, 512]: not a resnet18 state dict`);
  const model = resnet18({ numClasses: fc.shape[0], device });
  await loadWeights(model, bytes);
  return model;
}

const settings = (ctx: DemoContext, label: string, rngStage: number, model: ResNet) => ({
  label,
  epochs: ctx.opts.epochs,
  batchSize: ctx.opts.batchSize,
  // One epoch's first quarter warms up (at least one step), then cosine to zero.
  warmupIters: Math.ceil(ctx.target.train.indices.length / ctx.opts.batchSize / 4),
  pipe: ctx.pipe,
  rng: ctx.rng(rngStage),
  device: ctx.device,
  // Only the BatchNorm layers that train (all of them from scratch, layer4's in transfer) get fresh statistics.
  bnRefresh: { layers: trainableBatchNorms(model), held: ctx.target.bnImages },
});

/**
 * Stage 2: transfer learning exactly as the seed does it (checkpoint into a
 * fresh resnet18, new fc, everything frozen but layer4 and fc, SGD parameter
 * groups, warm-up then cosine, frozen BatchNorm kept in eval mode,
 * RandomResizedCrop + flip), and beside it the same network trained from
 * random weights on the same images for the same epochs, so the report
 * shows what the pretrained backbone bought. Returns the fine-tuned model
 * for the later stages.
 */
export async function transferStage(ctx: DemoContext, checkpoint: string): Promise<{ transfer: TrainingResult; scratch: TrainingResult; model: ResNet }> {
  const { io, device, target, opts } = ctx;
  const n = target.train.indices.length;
  io.log(`[2/7] transfer learning to ${target.classes.length} new classes: ${n} training images (${opts.trainPerClass} per class), ${opts.epochs} epochs; test ${target.test.set.indices.length} images`);

  let t0 = performance.now();
  ctx.rng(2);
  const model = await loadBackbone(checkpoint, device);
  model.fc = new Linear(512, target.classes.length, { device });
  const opt = seedRecipeOptimizer(model);
  const frozen = freezeBatchNorm(model);
  const epochs = await trainModel(model, opt, target.train, target.test, settings(ctx, 'transfer', 3, model), io);
  opt.dispose();
  frozen.release();
  model.eval();
  const transfer: TrainingResult = { epochs, top1: epochs.at(-1)!.top1, top2: epochs.at(-1)!.top2, seconds: (performance.now() - t0) / 1000, trainImages: n };

  t0 = performance.now();
  ctx.rng(4);
  const fresh = resnet18({ numClasses: target.classes.length, device });
  const opt2 = new optim.SGD(fresh.parameters(), FROM_SCRATCH_SGD);
  const scratchEpochs = await trainModel(fresh, opt2, target.train, target.test, settings(ctx, 'scratch', 5, fresh), io);
  opt2.dispose();
  fresh.dispose();
  const scratch: TrainingResult = { epochs: scratchEpochs, top1: scratchEpochs.at(-1)!.top1, top2: scratchEpochs.at(-1)!.top2, seconds: (performance.now() - t0) / 1000, trainImages: n };
  return { transfer, scratch, model };
}
