import { fromArray, noGrad, tidy, type Generator as RandomGenerator, type Tensor } from '@kiln/core';
import { BatchNorm2d, Module } from '@kiln/nn';
import { hflip, randomResizedCrop, randomResizedCropParams, toTensorNormalize, type ResNet } from '@kiln/resnet';
import { greyToRgb, shuffled, type Batch, type ImagePipeline, type LabelledSet } from './data/images.js';
import type { EvalSet } from './train-loop.js';

/**
 * The frozen prefix of a fine-tune: everything before `layer4` (conv1, bn1,
 * relu, maxpool, layer1-3). In the seed's recipe it has no trainable
 * parameter and its BatchNorm layers are held in eval mode
 * (`freezeBatchNorm`), so its output for an image never changes during the
 * fine-tune: a PyTorch user computes it once per image and trains
 * layer4 + fc on the stored activations, and so does the demo. With
 * transfer's whole-item crop the only augmentation left is the flip, so two
 * stored activations per training image (as is and flipped) replace
 * every epoch's prefix forward, with the same numbers: the batches are drawn
 * from the same generator in the same order (see {@link cachedTrainBatches}).
 */
export const PREFIX_MODULES = ['conv1', 'bn1', 'layer1', 'layer2', 'layer3'] as const;

/**
 * Why the prefix of `model` cannot be stored for a fine-tune with `pipe`, or
 * null when it can: no prefix parameter may train, every prefix BatchNorm must
 * stay in eval mode when the model trains, and the crop must be the whole
 * item (RandomResizedCrop scale [1, 1]), leaving the flip as the only
 * augmentation.
 */
export function prefixNotCacheable(model: ResNet, pipe: ImagePipeline): string | null {
  if (pipe.cropScale[0] !== 1 || pipe.cropScale[1] !== 1) return `the crop scale is [${pipe.cropScale.join(', ')}], not the whole item [1, 1]`;
  const wasTraining = model.training;
  model.train();
  try {
    for (const name of PREFIX_MODULES) {
      const m = model[name] as Module;
      const trainable = m.namedParameters({ prefix: name }).find(([, p]) => p.requiresGrad);
      if (trainable) return `${trainable[0]} trains`;
      const bn = m.namedModules({ prefix: name }).find(([, b]) => b instanceof BatchNorm2d && b.training);
      if (bn) return `${bn[0]} is in training mode (not frozen)`;
    }
    return null;
  } finally {
    model.train(wasTraining);
  }
}

/** The prefix's activations for images [B, 3, S, S]: [B, 256, S/16, S/16] (eval mode, no autograd). */
export function prefixForward(model: ResNet, images: Tensor): Tensor {
  return noGrad(() =>
    tidy(() => {
      let h = model.maxpool.call(model.relu.call(model.bn1.call(model.conv1.call(images)))) as Tensor;
      for (const layer of [model.layer1, model.layer2, model.layer3]) h = layer.call(h) as Tensor;
      return h;
    }),
  );
}

/**
 * The rest of a ResNet after its frozen prefix, sharing the model's own
 * `layer4`, `avgpool` and `fc` modules (so training it trains the model):
 * logits for prefix activations [B, 256, h, w].
 */
export class PrefixTail extends Module {
  declare layer4: Module;
  declare avgpool: Module;
  declare fc: Module;

  constructor(model: ResNet) {
    super();
    this.layer4 = model.layer4;
    this.avgpool = model.avgpool;
    this.fc = model.fc;
  }

  override forward(h: Tensor): Tensor {
    return tidy(() => this.fc.call((this.avgpool.call(this.layer4.call(h)) as Tensor).flatten(1)) as Tensor);
  }
}

/** Stored prefix activations of a set: [N, ...shape] values, item k at k · size(shape). */
export interface PrefixValues {
  values: Float32Array;
  shape: readonly number[];
}

/** Images per prefix forward while filling a store. */
const STORE_BATCH = 64;

/** The prefix's activations of `n` images held as [n, 3, S, S] values, in batches. */
async function prefixOf(model: ResNet, images: Float32Array, n: number, size: number, device: string): Promise<PrefixValues> {
  const plane = 3 * size * size;
  let out: Float32Array | undefined;
  let shape: number[] = [];
  for (let start = 0; start < n; start += STORE_BATCH) {
    const b = Math.min(STORE_BATCH, n - start);
    const x = fromArray(images.subarray(start * plane, (start + b) * plane), [b, 3, size, size], { device });
    const h = prefixForward(model, x);
    x.dispose();
    const data = (await h.toArray()) as Float32Array;
    shape = h.shape.slice(1);
    h.dispose();
    out ??= new Float32Array(n * (data.length / b));
    out.set(data, start * (data.length / b));
  }
  return { values: out ?? new Float32Array(0), shape };
}

/** The prefix's activations of an evaluation set (its eval-transform values). */
export async function prefixOfEvalSet(model: ResNet, held: EvalSet, size: number, device: string): Promise<EvalSet> {
  const p = await prefixOf(model, held.values, held.set.indices.length, size, device);
  return { set: held.set, values: p.values, itemShape: p.shape };
}

/** A training set's stored prefix activations: each item as the whole-item crop, and flipped. */
export interface TrainPrefixStore {
  set: LabelledSet;
  pipe: ImagePipeline;
  plain: PrefixValues;
  flipped: PrefixValues;
}

/** A generator that always draws 0.5: RandomResizedCrop's middle aspect ratio (1), a whole-item box. */
const MIDDLE: RandomGenerator = { random: () => 0.5 } as unknown as RandomGenerator;

/**
 * The prefix activations of every training image as the training transform
 * makes it with `pipe` (RandomResizedCrop at scale [1, 1], the whole item,
 * resized exactly as in training), as is and horizontally flipped.
 */
export async function storeTrainPrefix(model: ResNet, set: LabelledSet, pipe: ImagePipeline, device: string): Promise<TrainPrefixStore> {
  const plane = 3 * pipe.size * pipe.size;
  const n = set.indices.length;
  const plain = new Float32Array(n * plane);
  const flipped = new Float32Array(n * plane);
  set.indices.forEach((i, k) => {
    const crop = randomResizedCrop(greyToRgb(set.split, i), MIDDLE, { size: pipe.size, scale: pipe.cropScale });
    plain.set(toTensorNormalize(crop), k * plane);
    flipped.set(toTensorNormalize(hflip(crop)), k * plane);
  });
  return {
    set,
    pipe,
    plain: await prefixOf(model, plain, n, pipe.size, device),
    flipped: await prefixOf(model, flipped, n, pipe.size, device),
  };
}

/**
 * One epoch of training batches of stored prefix activations, drawn from
 * `rng` exactly as `trainBatches` draws image batches (the same shuffle,
 * then per item RandomResizedCrop's draws, which at scale [1, 1] always give
 * the whole item, and the flip's), so a run on the store sees the same
 * items, flips and order as a run on images. Full batches only.
 */
export function* cachedTrainBatches(store: TrainPrefixStore, batchSize: number, rng: RandomGenerator, device: string): Generator<Batch> {
  const { set, pipe } = store;
  const order = shuffled(set.indices.length, rng);
  const shape = store.plain.shape;
  const item = shape.reduce((a, b) => a * b, 1);
  const width = set.split.cols;
  const height = set.split.rows;
  for (let start = 0; start + batchSize <= order.length; start += batchSize) {
    const items = order.slice(start, start + batchSize);
    const data = new Float32Array(items.length * item);
    items.forEach((k, b) => {
      const box = randomResizedCropParams(width, height, rng, pipe.cropScale);
      if (box.width !== width || box.height !== height) throw new Error(`cachedTrainBatches: a crop of ${box.width}x${box.height} of a ${width}x${height} item; the store holds whole items only`);
      const src = rng.random() < 0.5 ? store.flipped : store.plain;
      data.set(src.values.subarray(k * item, (k + 1) * item), b * item);
    });
    yield {
      images: fromArray(data, [items.length, ...shape], { device }),
      labels: fromArray(Int32Array.from(items, (k) => set.labels[k]!), [items.length], { dtype: 'int32', device }),
      items,
    };
  }
}
