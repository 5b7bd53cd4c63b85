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

/**
 * Settings of the seed-recipe runs (transfer, the fine-tunes) of `model`:
 * the run's batch, a quarter-epoch warm-up, transfer's pipeline. The
 * frozen BatchNorm layers stay in eval mode (`freezeBatchNorm`); layer4's,
 * which train, normalise with batch statistics and get their running
 * statistics re-estimated before each evaluation.
 */
export const recipeSettings = (ctx: DemoContext, model: ResNet, label: string, epochs: number, rngStage: number) => ({
  label,
  epochs,
  batchSize: ctx.opts.batchSize,
  // One epoch's first quarter warms up (at least one step), then cosine to zero.
  warmupIters: Math.ceil(ctx.target.train.indices.length / ctx.opts.batchSize / 4),
  pipe: ctx.pipe,
  rng: ctx.rng(rngStage),
  device: ctx.device,
  bnRefresh: { layers: trainableBatchNorms(model), held: ctx.target.bnImages },
});

/**
 * Batch size of the from-scratch run: pretraining's (the from-scratch
 * recipe), at most a quarter of the training images so each epoch has steps.
 */
export function scratchBatchSize(ctx: DemoContext): number {
  return Math.max(2, Math.min(ctx.opts.pretrainBatchSize, Math.floor(ctx.target.train.indices.length / 4)));
}

/**
 * Stage 2: transfer learning exactly as the seed does it (checkpoint into a
 * fresh resnet18, new fc, everything frozen but layer4 and fc, SGD parameter
 * groups, warm-up then cosine, frozen BatchNorm kept in eval mode,
 * RandomResizedCrop at scale [1, 1] + flip), and beside it the same network
 * trained from random weights on the same images for the same epochs, so the report
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
  const epochs = await trainModel(model, opt, target.train, target.test, recipeSettings(ctx, model, 'transfer', opts.epochs, 3), io);
  opt.dispose();
  frozen.release();
  model.eval();
  const transfer: TrainingResult = { epochs, top1: epochs.at(-1)!.top1, top2: epochs.at(-1)!.top2, seconds: (performance.now() - t0) / 1000, trainImages: n, batchSize: opts.batchSize };

  // From scratch: the same images and epochs with the recipe that trains this
  // network from random weights (pretraining's SGD and batch, every BatchNorm
  // in training mode, its running statistics re-estimated before each evaluation).
  t0 = performance.now();
  ctx.rng(4);
  const fresh = resnet18({ numClasses: target.classes.length, device });
  const opt2 = new optim.SGD(fresh.parameters(), FROM_SCRATCH_SGD);
  const scratchEpochs = await trainModel(fresh, opt2, target.train, target.test, {
    label: 'scratch',
    epochs: opts.epochs,
    batchSize: scratchBatchSize(ctx),
    warmupIters: Math.ceil(n / scratchBatchSize(ctx) / 4),
    pipe: ctx.pipe,
    rng: ctx.rng(5),
    device,
    bnRefresh: { layers: trainableBatchNorms(fresh), held: target.bnImages },
  }, io);
  opt2.dispose();
  fresh.dispose();
  const scratch: TrainingResult = { epochs: scratchEpochs, top1: scratchEpochs.at(-1)!.top1, top2: scratchEpochs.at(-1)!.top2, seconds: (performance.now() - t0) / 1000, trainImages: n, batchSize: scratchBatchSize(ctx), sgd: { ...FROM_SCRATCH_SGD } };
  return { transfer, scratch, model };
}
