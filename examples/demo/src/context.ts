import { Generator, manualSeed } from '@kiln/core';
import type { FashionMnist } from './data/fashion-mnist.js';
import { evalTensors, labelledSet, type ImagePipeline, type LabelledSet } from './data/images.js';
import { selectByClass } from './data/fashion-mnist.js';
import type { ResolvedOptions } from './options.js';
import type { DemoIO } from './progress.js';
import type { EvalSet } from './train-loop.js';

/**
 * The classes the backbone is pretrained on: pullover, dress, sandal, shirt,
 * sneaker. Like ImageNet for a photo task, the source covers the target's
 * domain: tops, a full-length garment and footwear, so every target class
 * has a relative the backbone's features already tell apart (an even/odd
 * split left the source without footwear, and transfer confused sandals
 * with sneakers: see the README's replay table).
 */
export const SOURCE_CLASSES = [2, 3, 5, 6, 7] as const;
/** The classes transfer learning targets: T-shirt/top, trouser, coat, bag, ankle boot. */
export const TARGET_CLASSES = [0, 1, 4, 8, 9] as const;

/** A task: its classes, a training set and a held-out test set. */
export interface Task {
  classes: readonly number[];
  train: LabelledSet;
  test: EvalSet;
  /** Up to {@link BN_REFRESH_IMAGES} training images (eval transform) that BatchNorm statistics are re-estimated on. */
  bnImages: EvalSet;
}

/** Training images the running BatchNorm statistics are re-estimated on before each evaluation. */
export const BN_REFRESH_IMAGES = 64;

/** What every stage gets. */
export interface DemoContext {
  opts: ResolvedOptions;
  io: DemoIO;
  /** Backend name tensors are created on ('webgpu' or 'cpu'). */
  device: string;
  data: FashionMnist;
  /** Transfer learning's pipeline (also the from-scratch run's, the fine-tunes' and every evaluation's). */
  pipe: ImagePipeline;
  /** Pretraining's pipeline: the same size, larger crop jitter. */
  pretrainPipe: ImagePipeline;
  source: Task;
  target: Task;
  /** A generator for stage `k`, seeded from the run's seed, and the global one re-seeded for model init. */
  rng(k: number): Generator;
}

/** Builds the two tasks from the data (deterministic selection, eval transforms computed once). */
export function buildTasks(data: FashionMnist, opts: ResolvedOptions, pipe: ImagePipeline): { source: Task; target: Task } {
  const task = (classes: readonly number[], trainPerClass: number): Task => {
    const train = labelledSet(data.train, selectByClass(data.train, classes, trainPerClass), classes);
    const test = labelledSet(data.test, selectByClass(data.test, classes, opts.testPerClass), classes);
    // Evenly strided over the training set (its file order mixes the classes).
    const stride = Math.max(1, train.indices.length / BN_REFRESH_IMAGES);
    const picks = Array.from({ length: Math.min(BN_REFRESH_IMAGES, train.indices.length) }, (_, k) => train.indices[Math.floor(k * stride)]!);
    const bn = labelledSet(data.train, picks, classes);
    return { classes, train, test: { set: test, values: evalTensors(test, pipe) }, bnImages: { set: bn, values: evalTensors(bn, pipe) } };
  };
  return { source: task(SOURCE_CLASSES, opts.pretrainPerClass), target: task(TARGET_CLASSES, opts.trainPerClass) };
}

/** A stage's generator; also re-seeds the global generator so model initialisation is reproducible per stage. */
export function stageRng(seed: number, k: number): Generator {
  manualSeed(seed * 7919 + k);
  return new Generator(seed * 104729 + k);
}
