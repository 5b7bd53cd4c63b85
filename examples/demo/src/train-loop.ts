import { tidy, type Generator as RandomGenerator, type Tensor } from '@kiln/core';
import { CrossEntropyLoss, lrScheduler, type Module, type optim } from '@kiln/nn';
import { evaluateAccuracy } from '@kiln/resnet';
import { evalBatches, trainBatches, type Batch, type ImagePipeline, type LabelledSet } from './data/images.js';
import type { DemoIO } from './progress.js';
import { updateBatchNorm } from './batchnorm-stats.js';
import type { BatchNorm2d } from '@kiln/nn';

/** A held-out set with its preprocessed values (computed once, reused every epoch). */
export interface EvalSet {
  set: LabelledSet;
  values: Float32Array;
  /** Shape of one item of `values` when it is not an image [3, S, S] (stored prefix activations). */
  itemShape?: readonly number[];
}

/** What one training epoch measured. */
export interface EpochRecord {
  epoch: number;
  /** Mean training loss over the epoch's steps. */
  loss: number;
  /** Top-1 / top-2 accuracy on the held-out set after the epoch (fractions). */
  top1: number;
  top2: number;
  /** Learning rate of the first parameter group at the epoch's last step. */
  lr: number;
  /** Wall-clock seconds of the epoch's training steps (evaluation excluded). */
  trainSeconds: number;
  /** Images per second over those steps. */
  imagesPerSecond: number;
}

/** Settings of {@link trainModel}. */
export interface TrainSettings {
  label: string;
  epochs: number;
  batchSize: number;
  /** Linear warm-up iterations (from 10 % of each group's lr), then cosine to 0 over the rest. */
  warmupIters: number;
  pipe: ImagePipeline;
  rng: RandomGenerator;
  device: string;
  /**
   * BatchNorm layers whose running statistics are re-estimated (update_bn)
   * on `set` before each evaluation; the others keep theirs.
   */
  bnRefresh?: { layers: BatchNorm2d[]; held: EvalSet };
  /**
   * The epoch's training batches, when not the augmented images of `train`
   * (stored prefix activations: `cachedTrainBatches`); drawn from `rng`.
   */
  batches?: (rng: RandomGenerator) => Iterable<Batch>;
}

/** Steps per epoch for a set: full batches only (`drop_last`). */
export const stepsPerEpoch = (set: LabelledSet, batchSize: number) => Math.floor(set.indices.length / batchSize);

/**
 * Warm-up then cosine, stepped every iteration: `LinearLR(0.1 → 1)` for
 * `warmup` steps, then `CosineAnnealingLR` to 0 over the remaining steps,
 * chained with `SequentialLR` as in PyTorch.
 */
export function warmupCosine(opt: optim.Optimizer, warmup: number, total: number): lrScheduler.LRScheduler {
  const w = Math.max(1, Math.min(warmup, total - 1));
  const warm = new lrScheduler.LinearLR(opt, { startFactor: 0.1, endFactor: 1, totalIters: w });
  const cosine = new lrScheduler.CosineAnnealingLR(opt, Math.max(1, total - w));
  return new lrScheduler.SequentialLR(opt, [warm, cosine], [w]);
}

/** Top-1 / top-2 on a held-out set (eval mode, no autograd), with a progress bar. */
export async function evaluate(model: Module, held: EvalSet, batchSize: number, pipe: ImagePipeline, device: string, io: DemoIO, label: string): Promise<{ top1: number; top2: number; count: number }> {
  const bar = io.bar(label, held.set.indices.length, 'images');
  try {
    const r = await evaluateAccuracy(model, disposing(evalBatches(held.set, held.values, batchSize, held.itemShape ?? pipe.size, device)), { topk: [2], onBatch: (n) => bar.update(n) });
    return { top1: r.top1, top2: r.correct[2]! / r.count, count: r.count };
  } finally {
    bar.stop();
  }
}

/** Yields each batch and disposes it once the consumer asks for the next. */
export function* disposing<T extends { images: Tensor; labels: Tensor }>(batches: Iterable<T>): Generator<T> {
  for (const b of batches) {
    try {
      yield b;
    } finally {
      b.images.dispose();
      b.labels.dispose();
    }
  }
}

/**
 * Trains `model` with `opt` for `epochs` over `train` (augmented, shuffled),
 * the schedule stepped per iteration, and evaluates on `held` after every
 * epoch. Returns one record per epoch.
 */
export async function trainModel(model: Module, opt: optim.Optimizer, train: LabelledSet, held: EvalSet, s: TrainSettings, io: DemoIO): Promise<EpochRecord[]> {
  const lossFn = new CrossEntropyLoss();
  const steps = stepsPerEpoch(train, s.batchSize);
  const sched = warmupCosine(opt, s.warmupIters, steps * s.epochs);
  const records: EpochRecord[] = [];
  for (let epoch = 1; epoch <= s.epochs; epoch++) {
    model.train();
    const bar = io.bar(`${s.label} ${epoch}/${s.epochs}`, steps, 'steps');
    let lossSum = 0;
    let step = 0;
    const t0 = performance.now();
    try {
      for (const { images, labels } of disposing(s.batches ? s.batches(s.rng) : trainBatches(train, s.batchSize, s.pipe, s.rng, s.device))) {
        const loss = tidy(() => {
          opt.zeroGrad();
          const l = lossFn.call(model.call(images) as Tensor, labels) as Tensor;
          l.backward();
          opt.step();
          return l;
        });
        const value = await loss.item();
        loss.dispose();
        if (!Number.isFinite(value)) throw new Error(`${s.label}: the training loss became ${value} at epoch ${epoch}, step ${step + 1}`);
        sched.step();
        lossSum += value;
        step++;
        bar.update(step, { loss: value.toFixed(3) });
      }
    } finally {
      bar.stop();
    }
    const trainSeconds = (performance.now() - t0) / 1000;
    if (s.bnRefresh) updateBatchNorm(model, s.bnRefresh.layers, s.bnRefresh.held.set, s.bnRefresh.held.values, s.bnRefresh.held.itemShape ?? s.pipe.size, s.device);
    const acc = await evaluate(model, held, Math.max(s.batchSize, 64), s.pipe, s.device, io, `${s.label} eval`);
    const record: EpochRecord = {
      epoch,
      loss: lossSum / Math.max(1, step),
      top1: acc.top1,
      top2: acc.top2,
      lr: opt.paramGroups[0]!.lr,
      trainSeconds,
      imagesPerSecond: (step * s.batchSize) / trainSeconds,
    };
    records.push(record);
    io.log(`  ${s.label} epoch ${epoch}/${s.epochs}: loss ${record.loss.toFixed(4)}, test top-1 ${pct(record.top1)}, top-2 ${pct(record.top2)} (${trainSeconds.toFixed(1)} s, ${record.imagesPerSecond.toFixed(1)} img/s)`);
  }
  return records;
}

/** A fraction as a percentage with two decimals: 0.9312 -> "93.12 %". */
export const pct = (x: number) => `${(100 * x).toFixed(2)} %`;
