import { adaptiveAvgPool2d, avgPool2d, maxPool2d, maxPool2dWithIndices, type MaxPoolWithIndices, type Pair, type Tensor } from '@kiln/core';
import { Module } from '../module.js';
import { py } from '../repr.js';

/** Options of {@link MaxPool2d}. */
export interface MaxPool2dOptions {
  /** Defaults to kernelSize. */
  stride?: Pair | null;
  /** Implicit padding on each side. Default 0. */
  padding?: Pair;
  /** Spacing between window taps. Default 1. */
  dilation?: Pair;
  /** forward returns { values, indices } instead of a tensor. */
  returnIndices?: boolean;
  /** Rounds the output size up (a last partial window). Default false. */
  ceilMode?: boolean;
}

/** Max pooling over NCHW input (torch.nn.MaxPool2d). */
export class MaxPool2d extends Module {
  /** Window size. */
  readonly kernelSize: Pair;
  /** Window step. */
  readonly stride: Pair;
  /** Implicit padding on each side. */
  readonly padding: Pair;
  /** Spacing between window taps. */
  readonly dilation: Pair;
  /** When true, forward returns { values, indices }. */
  readonly returnIndices: boolean;
  /** Rounds the output size up. */
  readonly ceilMode: boolean;

  /** Stride defaults to kernelSize, as PyTorch. */
  constructor(kernelSize: Pair, opts: MaxPool2dOptions = {}) {
    super();
    this.kernelSize = kernelSize;
    this.stride = opts.stride ?? kernelSize;
    this.padding = opts.padding ?? 0;
    this.dilation = opts.dilation ?? 1;
    this.returnIndices = opts.returnIndices ?? false;
    this.ceilMode = opts.ceilMode ?? false;
  }

  override forward(x: Tensor): Tensor | MaxPoolWithIndices {
    const o = { stride: this.stride, padding: this.padding, dilation: this.dilation, ceilMode: this.ceilMode };
    return this.returnIndices ? maxPool2dWithIndices(x, this.kernelSize, o) : maxPool2d(x, this.kernelSize, o);
  }

  override extraRepr(): string {
    return `kernel_size=${py(this.kernelSize)}, stride=${py(this.stride)}, padding=${py(this.padding)}, dilation=${py(this.dilation)}, ceil_mode=${py(this.ceilMode)}`;
  }
}

/** Options of {@link AvgPool2d}. */
export interface AvgPool2dOptions {
  /** Defaults to kernelSize. */
  stride?: Pair | null;
  /** Implicit padding on each side. Default 0. */
  padding?: Pair;
  /** Rounds the output size up (a last partial window). Default false. */
  ceilMode?: boolean;
  /** Counts padded cells in the divisor. Default true. */
  countIncludePad?: boolean;
  /** Divides every window by this instead of its size. */
  divisorOverride?: number;
}

/** Average pooling over NCHW input (torch.nn.AvgPool2d). */
export class AvgPool2d extends Module {
  /** Window size. */
  readonly kernelSize: Pair;
  /** Window step. */
  readonly stride: Pair;
  /** Implicit padding on each side. */
  readonly padding: Pair;
  /** Rounds the output size up. */
  readonly ceilMode: boolean;
  /** Counts padded cells in the divisor. */
  readonly countIncludePad: boolean;
  /** Divisor used instead of the window size, when set. */
  readonly divisorOverride: number | undefined;

  /** Stride defaults to kernelSize, as PyTorch. */
  constructor(kernelSize: Pair, opts: AvgPool2dOptions = {}) {
    super();
    this.kernelSize = kernelSize;
    this.stride = opts.stride ?? kernelSize;
    this.padding = opts.padding ?? 0;
    this.ceilMode = opts.ceilMode ?? false;
    this.countIncludePad = opts.countIncludePad ?? true;
    this.divisorOverride = opts.divisorOverride;
  }

  override forward(x: Tensor): Tensor {
    return avgPool2d(x, this.kernelSize, {
      stride: this.stride,
      padding: this.padding,
      ceilMode: this.ceilMode,
      countIncludePad: this.countIncludePad,
      divisorOverride: this.divisorOverride,
    });
  }

  override extraRepr(): string {
    return `kernel_size=${py(this.kernelSize)}, stride=${py(this.stride)}, padding=${py(this.padding)}`;
  }
}

/** Output size of adaptive pooling: an int, or [h, w] where null keeps that input size. */
export type AdaptiveSize = number | readonly [number | null, number | null];

/** Average pooling to a fixed output size (torch.nn.AdaptiveAvgPool2d). */
export class AdaptiveAvgPool2d extends Module {
  /** Output height and width (null keeps the input's). */
  readonly outputSize: AdaptiveSize;

  /** Pools any input size down to `outputSize`. */
  constructor(outputSize: AdaptiveSize) {
    super();
    this.outputSize = outputSize;
  }

  override forward(x: Tensor): Tensor {
    return adaptiveAvgPool2d(x, this.outputSize);
  }

  override extraRepr(): string {
    return `output_size=${py(this.outputSize)}`;
  }
}
