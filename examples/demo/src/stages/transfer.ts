import { FormatError, type Tensor } from '@kiln/core';
import { Linear, optim, saveSafetensors } from '@kiln/nn';
import { freezeBatchNorm, loadWeights, readWeights, resnet18, type ResNet } from '@kiln/resnet';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DemoContext } from '../context.js';
import type { TrainingResult } from '../results.js';
import { evaluate, pct, trainModel, type EpochRecord } from '../train-loop.js';
import { cachedTrainBatches, prefixNotCacheable, prefixOfEvalSet, PrefixTail, storeTrainPrefix } from '../frozen-prefix.js';
import { trainableBatchNorms } from '../batchnorm-stats.js';
import { cacheKey, checkRemeasured, dataKey } from '../model-cache.js';
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
 * Trains `model`, already set up with the seed recipe (`opt` from
 * {@link seedRecipeOptimizer}, `freezeBatchNorm` applied), for `epochs`
 * with {@link recipeSettings}. When its prefix (conv1 to layer3) is frozen
 * and the crop is the whole item, the prefix's activations of the training
 * images (as is and flipped), the test images and the BatchNorm images are
 * computed once and layer4 + fc train on them (`PrefixTail`): the same
 * items, flips and order as image batches, without a prefix forward per step.
 */
export async function trainSeedRecipe(ctx: DemoContext, model: ResNet, opt: optim.SGD, label: string, epochs: number, rngStage: number): Promise<EpochRecord[]> {
  const { io, device, target } = ctx;
  const settings = recipeSettings(ctx, model, label, epochs, rngStage);
  const why = ctx.opts.storePrefix ? prefixNotCacheable(model, ctx.pipe) : 'turned off (--no-store-prefix)';
  if (why !== null) {
    io.log(`  ${label}: frozen layers run every step (${why})`);
    return trainModel(model, opt, target.train, target.test, settings, io);
  }
  const t0 = performance.now();
  const store = await storeTrainPrefix(model, target.train, ctx.pipe, device);
  const test = await prefixOfEvalSet(model, target.test, ctx.pipe.size, device);
  const bn = await prefixOfEvalSet(model, target.bnImages, ctx.pipe.size, device);
  io.log(`  ${label}: frozen conv1-layer3 computed once (${2 * target.train.indices.length} training crops, ${test.set.indices.length} test, ${bn.set.indices.length} BatchNorm images: ${((performance.now() - t0) / 1000).toFixed(1)} s); layer4 + fc train on its [${store.plain.shape.join(', ')}] activations`);
  const tail = new PrefixTail(model);
  return trainModel(tail, opt, target.train, test, {
    ...settings,
    batches: (rng) => cachedTrainBatches(store, settings.batchSize, rng, device),
    bnRefresh: { layers: settings.bnRefresh.layers, held: bn },
  }, io);
}

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

  const t0 = performance.now();
  ctx.rng(2);
  const model = await loadBackbone(checkpoint, device);
  model.fc = new Linear(512, target.classes.length, { device });
  const opt = seedRecipeOptimizer(model);
  const frozen = freezeBatchNorm(model);
  const epochs = await trainSeedRecipe(ctx, model, opt, 'transfer', opts.epochs, 3);
  opt.dispose();
  frozen.release();
  model.eval();
  const transfer: TrainingResult = { epochs, top1: epochs.at(-1)!.top1, top2: epochs.at(-1)!.top2, seconds: (performance.now() - t0) / 1000, trainImages: n, batchSize: opts.batchSize };

  const scratch = await scratchRun(ctx);
  return { transfer, scratch, model };
}

/** The from-scratch run's cache key: everything that changes what it trains. */
function scratchKey(ctx: DemoContext): string {
  const { opts, data, target } = ctx;
  const what = {
    v: 1,
    data: dataKey(data),
    classes: target.classes,
    perClass: opts.trainPerClass,
    testPerClass: opts.testPerClass,
    epochs: opts.epochs,
    batch: scratchBatchSize(ctx),
    size: ctx.pipe.size,
    crop: ctx.pipe.cropScale,
    seed: opts.seed,
    sgd: FROM_SCRATCH_SGD,
  };
  return cacheKey(what);
}

/**
 * From scratch: the same images and epochs with the recipe that trains this
 * network from random weights (pretraining's SGD and batch, every BatchNorm
 * in training mode, its running statistics re-estimated before each
 * evaluation). It depends on nothing the backbone does, so like the backbone
 * it is cached (weights and per-epoch records, keyed by its settings) and a
 * later run loads it and re-measures its accuracy instead of training it
 * again; `--retrain` redoes it.
 */
async function scratchRun(ctx: DemoContext): Promise<TrainingResult> {
  const { io, device, target, opts } = ctx;
  const n = target.train.indices.length;
  const key = scratchKey(ctx);
  const dir = join(opts.cacheDir, 'demo');
  const weights = join(dir, `resnet18-scratch-${key}.safetensors`);
  const meta = join(dir, `resnet18-scratch-${key}.json`);
  const t0 = performance.now();
  if (!opts.retrain && existsSync(weights) && existsSync(meta)) {
    const record = JSON.parse(await readFile(meta, 'utf8')) as TrainingResult;
    const fresh = resnet18({ numClasses: target.classes.length, device });
    await loadWeights(fresh, weights);
    fresh.eval();
    const acc = await evaluate(fresh, target.test, 64, ctx.pipe, device, io, 'scratch eval');
    fresh.dispose();
    checkRemeasured('transfer', 'from-scratch model', weights, 'target', acc, record.top1);
    io.log(`  from scratch: reused the cached run ${weights} (${record.epochs.length} epochs, top-1 ${pct(record.top1)}, re-measured; --retrain redoes it)`);
    return { ...record, cached: true, seconds: (performance.now() - t0) / 1000 };
  }
  ctx.rng(4);
  const fresh = resnet18({ numClasses: target.classes.length, device });
  const opt = new optim.SGD(fresh.parameters(), FROM_SCRATCH_SGD);
  const epochs = await trainModel(fresh, opt, target.train, target.test, {
    label: 'scratch',
    epochs: opts.epochs,
    batchSize: scratchBatchSize(ctx),
    warmupIters: Math.ceil(n / scratchBatchSize(ctx) / 4),
    pipe: ctx.pipe,
    rng: ctx.rng(5),
    device,
    bnRefresh: { layers: trainableBatchNorms(fresh), held: target.bnImages },
  }, io);
  opt.dispose();
  const sd = fresh.stateDict() as Record<string, Tensor>;
  const bytes = await saveSafetensors(sd);
  for (const t of Object.values(sd)) t.dispose();
  fresh.dispose();
  const result: TrainingResult = { epochs, top1: epochs.at(-1)!.top1, top2: epochs.at(-1)!.top2, seconds: (performance.now() - t0) / 1000, trainImages: n, batchSize: scratchBatchSize(ctx), sgd: { ...FROM_SCRATCH_SGD } };
  await mkdir(dir, { recursive: true });
  await writeFile(weights, bytes);
  await writeFile(meta, JSON.stringify(result));
  return result;
}
