import { KilnError, conv2d, empty, type Pair, type Tensor } from '@kiln/core';
import { Module } from '../module.js';
import { parameter } from '../parameter.js';
import { py } from '../repr.js';
import { defaultLayerInit_ } from '../init.js';

/** Options of {@link Conv2d}, as torch.nn.Conv2d's keyword arguments. */
export interface Conv2dOptions {
  /** Step of the kernel window. Default 1. */
  stride?: Pair;
  /** Ints, or 'valid' / 'same'. */
  padding?: Pair | 'same' | 'valid';
  /** Spacing between kernel taps. Default 1. */
  dilation?: Pair;
  /** Channel groups: inChannels and outChannels are split into this many. Default 1. */
  groups?: number;
  /** Learnable per-channel bias. Default true. */
  bias?: boolean;
  /** Only 'zeros' is supported. */
  paddingMode?: 'zeros';
  /** Backend of the parameters (default backend when omitted). */
  device?: string;
}

const toPair = (v: Pair): [number, number] => (typeof v === 'number' ? [v, v] : [v[0], v[1]]);

/**
 * 2-D convolution layer (torch.nn.Conv2d): weight [out, in/groups, kH, kW],
 * optional bias [out], initialised as PyTorch does (kaiming-uniform with
 * a=√5, bias U(-1/√fan_in, 1/√fan_in)).
 */
export class Conv2d extends Module {
  /** Channels of the input. */
  readonly inChannels: number;
  /** Channels of the output (filters). */
  readonly outChannels: number;
  /** Kernel height and width. */
  readonly kernelSize: [number, number];
  /** Step of the kernel window, [h, w]. */
  readonly stride: [number, number];
  /** Zero padding, [h, w], or 'same' / 'valid'. */
  readonly padding: [number, number] | 'same' | 'valid';
  /** Spacing between kernel taps, [h, w]. */
  readonly dilation: [number, number];
  /** Channel groups. */
  readonly groups: number;
  /** Only zero padding exists (PyTorch's padding_mode='zeros'). */
  readonly paddingMode = 'zeros' as const;
  /** The filters, [outChannels, inChannels / groups, kh, kw]. */
  declare weight: Tensor;
  /** The per-channel bias [outChannels], or null when built with bias: false. */
  declare bias: Tensor | null;

  /** Weights initialised as PyTorch's Conv2d (kaiming-uniform, a = sqrt(5)) unless skipInit. */
  constructor(inChannels: number, outChannels: number, kernelSize: Pair, opts: Conv2dOptions = {}) {
    super();
    const groups = opts.groups ?? 1;
    if (!Number.isInteger(groups) || groups <= 0) throw new KilnError('Conv2d', 'groups must be a positive integer');
    if (inChannels % groups !== 0) throw new KilnError('Conv2d', 'in_channels must be divisible by groups');
    if (outChannels % groups !== 0) throw new KilnError('Conv2d', 'out_channels must be divisible by groups');
    if ((opts.paddingMode ?? 'zeros') !== 'zeros') throw new KilnError('Conv2d', `padding_mode '${String(opts.paddingMode)}' is not supported (only 'zeros')`);
    this.inChannels = inChannels;
    this.outChannels = outChannels;
    this.kernelSize = toPair(kernelSize);
    this.stride = toPair(opts.stride ?? 1);
    this.dilation = toPair(opts.dilation ?? 1);
    this.groups = groups;
    const padding = opts.padding ?? 0;
    if (typeof padding === 'string') {
      if (padding !== 'same' && padding !== 'valid') throw new KilnError('Conv2d', `Invalid padding string '${String(padding)}', should be one of {'valid', 'same'}`);
      if (padding === 'same' && this.stride.some((s) => s !== 1)) throw new KilnError('Conv2d', "padding='same' is not supported for strided convolutions");
      this.padding = padding;
    } else this.padding = toPair(padding);
    this.weight = parameter(empty([outChannels, inChannels / groups, ...this.kernelSize], { device: opts.device }));
    this.registerParameter('bias', opts.bias ?? true ? parameter(empty([outChannels], { device: opts.device })) : null);
    this.resetParameters();
  }

  /** Re-draws weight and bias with PyTorch's default initialisation. */
  resetParameters(): void {
    defaultLayerInit_(this.weight, this.bias);
  }

  override forward(x: Tensor): Tensor {
    return conv2d(x, this.weight, this.bias, { stride: this.stride, padding: this.padding, dilation: this.dilation, groups: this.groups });
  }

  override extraRepr(): string {
    let s = `${this.inChannels}, ${this.outChannels}, kernel_size=${py(this.kernelSize)}, stride=${py(this.stride)}`;
    if (typeof this.padding === 'string' || this.padding.some((p) => p !== 0)) s += `, padding=${py(this.padding)}`;
    if (this.dilation.some((d) => d !== 1)) s += `, dilation=${py(this.dilation)}`;
    if (this.groups !== 1) s += `, groups=${this.groups}`;
    if (!this.bias) s += ', bias=False';
    return s;
  }
}
