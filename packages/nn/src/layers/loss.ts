import { crossEntropy, mseLoss, nllLoss, type Reduction, type Tensor } from '@kiln/core';
import { Module } from '../module.js';

/** Options of the class-index losses. */
export interface WeightedLossOptions {
  /** Per-class weights [C], registered as the buffer `weight` (as PyTorch's _WeightedLoss). */
  weight?: Tensor | null;
  /** Targets equal to this contribute nothing (default -100). */
  ignoreIndex?: number;
  reduction?: Reduction;
}

/** Cross entropy of logits against class indices or probabilities (torch.nn.CrossEntropyLoss). */
export class CrossEntropyLoss extends Module {
  readonly ignoreIndex: number;
  readonly reduction: Reduction;
  readonly labelSmoothing: number;
  declare weight: Tensor | null;

  constructor(opts: WeightedLossOptions & { labelSmoothing?: number } = {}) {
    super();
    this.registerBuffer('weight', opts.weight ?? null);
    this.ignoreIndex = opts.ignoreIndex ?? -100;
    this.reduction = opts.reduction ?? 'mean';
    this.labelSmoothing = opts.labelSmoothing ?? 0;
  }

  override forward(input: Tensor, target: Tensor): Tensor {
    return crossEntropy(input, target, { weight: this.weight, ignoreIndex: this.ignoreIndex, reduction: this.reduction, labelSmoothing: this.labelSmoothing });
  }
}

/** Negative log-likelihood of log-probabilities (torch.nn.NLLLoss). */
export class NLLLoss extends Module {
  readonly ignoreIndex: number;
  readonly reduction: Reduction;
  declare weight: Tensor | null;

  constructor(opts: WeightedLossOptions = {}) {
    super();
    this.registerBuffer('weight', opts.weight ?? null);
    this.ignoreIndex = opts.ignoreIndex ?? -100;
    this.reduction = opts.reduction ?? 'mean';
  }

  override forward(input: Tensor, target: Tensor): Tensor {
    return nllLoss(input, target, { weight: this.weight, ignoreIndex: this.ignoreIndex, reduction: this.reduction });
  }
}

/** Mean squared error (torch.nn.MSELoss). */
export class MSELoss extends Module {
  readonly reduction: Reduction;

  constructor(opts: { reduction?: Reduction } = {}) {
    super();
    this.reduction = opts.reduction ?? 'mean';
  }

  override forward(input: Tensor, target: Tensor): Tensor {
    return mseLoss(input, target, { reduction: this.reduction });
  }
}
