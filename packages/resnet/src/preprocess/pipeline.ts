import { FormatError } from '@kiln/core';
import { decodeImage, type DecodeOptions } from './decode.js';
import { checkImage, type RgbImage } from './image.js';
import {
  centerCrop,
  IMAGENET_MEAN,
  IMAGENET_STD,
  randomHorizontalFlip,
  randomResizedCrop,
  resize,
  toTensorNormalize,
  type RandomResizedCropOptions,
  type Rng,
} from './transforms.js';

/** A CHW (or NCHW) float32 image tensor on a plain array, ready for `fromArray(data, shape)`. */
export interface ImageTensor {
  /** The values, row-major. */
  data: Float32Array;
  /** [3, H, W], or [N, 3, H, W] for a batch. */
  shape: number[];
}

/** Options for {@link preprocessImage}; defaults are torchvision's ImageNet eval transform. */
export interface PreprocessOptions extends DecodeOptions {
  /** Shorter side after Resize. Default 256. */
  resizeSize?: number;
  /** CenterCrop size. Default 224. */
  cropSize?: number;
  /** Per-channel mean subtracted. Default ImageNet's [0.485, 0.456, 0.406]. */
  mean?: readonly number[];
  /** Per-channel std divided by. Default ImageNet's [0.229, 0.224, 0.225]. */
  std?: readonly number[];
}

/**
 * The ImageNet eval pipeline torchvision documents for ResNet18:
 * decode -> RGB -> Resize(256) -> CenterCrop(224) -> ToTensor -> Normalize.
 * Accepts encoded PNG/JPEG bytes or an already decoded {@link RgbImage}.
 * @returns `{ data, shape: [3, 224, 224] }`.
 */
export function preprocessImage(input: Uint8Array | RgbImage, opts: PreprocessOptions = {}): ImageTensor {
  const img = toRgb(input, opts);
  const crop = opts.cropSize ?? 224;
  const out = centerCrop(resize(img, opts.resizeSize ?? 256), crop);
  return { data: toTensorNormalize(out, opts.mean ?? IMAGENET_MEAN, opts.std ?? IMAGENET_STD), shape: [3, crop, crop] };
}

/** Options for {@link preprocessTrainImage}. */
export interface TrainPreprocessOptions extends DecodeOptions, RandomResizedCropOptions {
  /** Probability of the horizontal flip. Default 0.5. */
  flipProbability?: number;
  /** Per-channel mean subtracted. Default ImageNet's [0.485, 0.456, 0.406]. */
  mean?: readonly number[];
  /** Per-channel std divided by. Default ImageNet's [0.229, 0.224, 0.225]. */
  std?: readonly number[];
}

/**
 * The ImageNet training pipeline: RandomResizedCrop(224) ->
 * RandomHorizontalFlip -> ToTensor -> Normalize, drawing from `rng`
 * (crop draws first, then one draw for the flip).
 */
export function preprocessTrainImage(input: Uint8Array | RgbImage, rng: Rng, opts: TrainPreprocessOptions = {}): ImageTensor {
  const img = randomHorizontalFlip(randomResizedCrop(toRgb(input, opts), rng, opts), rng, opts.flipProbability ?? 0.5);
  return { data: toTensorNormalize(img, opts.mean ?? IMAGENET_MEAN, opts.std ?? IMAGENET_STD), shape: [3, img.height, img.width] };
}

/**
 * Stacks equally shaped CHW tensors into one NCHW batch, like `torch.stack`.
 * @throws FormatError when the list is empty or shapes differ.
 */
export function batchImages(images: readonly ImageTensor[]): ImageTensor {
  const first = images[0];
  if (!first) throw new FormatError('batchImages', 'cannot batch an empty list of images');
  const size = first.data.length;
  const data = new Float32Array(images.length * size);
  images.forEach((t, i) => {
    if (t.shape.join() !== first.shape.join() || t.data.length !== size) {
      throw new FormatError('batchImages', `image ${i} has shape [${t.shape.join(', ')}], image 0 has [${first.shape.join(', ')}]`);
    }
    data.set(t.data, i * size);
  });
  return { data, shape: [images.length, ...first.shape] };
}

function toRgb(input: Uint8Array | RgbImage, opts: DecodeOptions): RgbImage {
  if (input instanceof Uint8Array) return decodeImage(input, opts);
  checkImage('preprocessImage', input);
  return input;
}
