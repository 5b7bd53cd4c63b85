import { fromArray, type Generator as RandomGenerator, type Tensor } from '@kiln/core';
import { newImage, randomHorizontalFlip, randomResizedCrop, resize, toTensorNormalize, type RgbImage } from '@kiln/resnet';
import type { FashionSplit } from './fashion-mnist.js';

/**
 * The demo's image pipeline, the seed's on grey images: replicate the grey
 * channel to RGB, upscale to the network's input size, ImageNet mean/std.
 * Training adds RandomResizedCrop and a horizontal flip.
 */
export interface ImagePipeline {
  /** Input size of the network (square). */
  size: number;
  /** RandomResizedCrop's area range. Fashion-MNIST items fill the frame, so crops stay large. */
  cropScale: readonly [number, number];
}

/**
 * RandomResizedCrop's area range in pretraining: crops of 60-100 % of the
 * item (Fashion-MNIST items fill the frame, so crops stay large).
 */
export const PRETRAIN_CROP_SCALE = [0.6, 1] as const;

/**
 * RandomResizedCrop's area range in transfer learning, the from-scratch run
 * and the fine-tunes: [1, 1], the whole item, so the augmentation is the
 * horizontal flip. With the seed's fixed small learning rates the few
 * hundred steps cannot also absorb crop jitter (PyTorch replay, demo
 * README: flip-only beat scale [0.6, 1] on the same backbone).
 */
export const TRANSFER_CROP_SCALE = [1, 1] as const;

/** The two pipelines of a run at `imageSize`: pretraining's and transfer learning's. */
export function demoPipelines(opts: { imageSize: number }): { pretrain: ImagePipeline; transfer: ImagePipeline } {
  return { pretrain: { size: opts.imageSize, cropScale: PRETRAIN_CROP_SCALE }, transfer: { size: opts.imageSize, cropScale: TRANSFER_CROP_SCALE } };
}

/** Item `i` of a split as an RGB image (grey replicated to the three channels). */
export function greyToRgb(split: FashionSplit, i: number): RgbImage {
  const plane = split.rows * split.cols;
  const img = newImage(split.cols, split.rows);
  const src = split.images.subarray(i * plane, (i + 1) * plane);
  for (let p = 0; p < plane; p++) {
    const v = src[p]!;
    img.data[3 * p] = v;
    img.data[3 * p + 1] = v;
    img.data[3 * p + 2] = v;
  }
  return img;
}

/** The eval transform of item `i`: Resize(size) then ToTensor + Normalize, CHW float32. */
export function evalImage(split: FashionSplit, i: number, pipe: ImagePipeline): Float32Array {
  return toTensorNormalize(resize(greyToRgb(split, i), [pipe.size, pipe.size]));
}

/** The training transform of item `i`: RandomResizedCrop(size, cropScale), RandomHorizontalFlip, ToTensor + Normalize. */
export function trainImage(split: FashionSplit, i: number, pipe: ImagePipeline, rng: RandomGenerator): Float32Array {
  const crop = randomResizedCrop(greyToRgb(split, i), rng, { size: pipe.size, scale: pipe.cropScale });
  return toTensorNormalize(randomHorizontalFlip(crop, rng));
}

/** A labelled set of images: items of a split, and each one's label in the task's own numbering. */
export interface LabelledSet {
  split: FashionSplit;
  indices: number[];
  /** Task label of each index (0..classes-1). */
  labels: Int32Array;
}

/** Items `indices` of `split`, with labels renumbered to positions in `classes`. */
export function labelledSet(split: FashionSplit, indices: number[], classes: readonly number[]): LabelledSet {
  const pos = new Map(classes.map((c, i) => [c, i]));
  return { split, indices, labels: Int32Array.from(indices, (i) => pos.get(split.labels[i]!)!) };
}

/** One batch on a device: images [B, 3, S, S], int32 labels [B], and the positions in the set. */
export interface Batch {
  images: Tensor;
  labels: Tensor;
  /** Positions in the set's `indices` of the batch's items. */
  items: number[];
}

/** A permutation of 0..n-1 drawn from `rng` (Fisher–Yates). */
export function shuffled(n: number, rng: RandomGenerator): number[] {
  const p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(0, i + 1);
    [p[i], p[j]] = [p[j]!, p[i]!];
  }
  return p;
}

function toBatch(data: Float32Array, set: LabelledSet, items: number[], size: number | readonly number[], device: string): Batch {
  return {
    images: fromArray(data, [items.length, ...(typeof size === 'number' ? [3, size, size] : size)], { device }),
    labels: fromArray(Int32Array.from(items, (k) => set.labels[k]!), [items.length], { dtype: 'int32', device }),
    items,
  };
}

/**
 * One epoch of augmented training batches in a random order drawn from
 * `rng` (the last, smaller batch is dropped, as `drop_last=True`, so
 * BatchNorm never sees a batch of one). The caller disposes each batch.
 */
export function* trainBatches(set: LabelledSet, batchSize: number, pipe: ImagePipeline, rng: RandomGenerator, device: string): Generator<Batch> {
  const order = shuffled(set.indices.length, rng);
  const plane = 3 * pipe.size * pipe.size;
  for (let start = 0; start + batchSize <= order.length; start += batchSize) {
    const items = order.slice(start, start + batchSize);
    const data = new Float32Array(items.length * plane);
    items.forEach((k, b) => data.set(trainImage(set.split, set.indices[k]!, pipe, rng), b * plane));
    yield toBatch(data, set, items, pipe.size, device);
  }
}

/** The eval transform of every item of a set, computed once and kept ([N, 3, S, S] values). */
export function evalTensors(set: LabelledSet, pipe: ImagePipeline): Float32Array {
  const plane = 3 * pipe.size * pipe.size;
  const out = new Float32Array(set.indices.length * plane);
  set.indices.forEach((i, k) => out.set(evalImage(set.split, i, pipe), k * plane));
  return out;
}

/**
 * Eval batches in set order from values made by {@link evalTensors} (items
 * [3, size, size]), or of any item shape given as `size` (stored
 * activations). The caller disposes each batch.
 */
export function* evalBatches(set: LabelledSet, values: Float32Array, batchSize: number, size: number | readonly number[], device: string): Generator<Batch> {
  const shape = typeof size === 'number' ? [3, size, size] : [...size];
  const plane = shape.reduce((a, b) => a * b, 1);
  for (let start = 0; start < set.indices.length; start += batchSize) {
    const items = Array.from({ length: Math.min(batchSize, set.indices.length - start) }, (_, b) => start + b);
    yield toBatch(values.subarray(start * plane, (start + items.length) * plane), set, items, shape, device);
  }
}
