import { empty, linear, type Tensor } from '@kiln/core';
import { Module } from '../module.js';
import { parameter } from '../parameter.js';
import { py } from '../repr.js';
import { defaultLayerInit_ } from '../init.js';

/**
 * Fully connected layer y = x Wᵀ + b (torch.nn.Linear): weight
 * [out_features, in_features], bias [out_features], PyTorch's default init.
 */
export class Linear extends Module {
  /** Size of each input sample's last dim. */
  readonly inFeatures: number;
  /** Size of each output sample's last dim. */
  readonly outFeatures: number;
  /** The weight, [outFeatures, inFeatures]. */
  declare weight: Tensor;
  /** The bias [outFeatures], or null when built with bias: false. */
  declare bias: Tensor | null;

  /** Weights initialised as PyTorch's Linear (kaiming-uniform, a = sqrt(5)) unless skipInit. */
  constructor(inFeatures: number, outFeatures: number, opts: { bias?: boolean; device?: string } = {}) {
    super();
    this.inFeatures = inFeatures;
    this.outFeatures = outFeatures;
    this.weight = parameter(empty([outFeatures, inFeatures], { device: opts.device }));
    this.registerParameter('bias', opts.bias ?? true ? parameter(empty([outFeatures], { device: opts.device })) : null);
    this.resetParameters();
  }

  /** Re-draws weight and bias with PyTorch's default initialisation. */
  resetParameters(): void {
    defaultLayerInit_(this.weight, this.bias);
  }

  override forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }

  override extraRepr(): string {
    return `in_features=${this.inFeatures}, out_features=${this.outFeatures}, bias=${py(this.bias !== null)}`;
  }
}
