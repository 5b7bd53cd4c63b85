import { crossEntropy, mseLoss, nllLoss, type Reduction, type Tensor } from '@kiln/core';
import { Module } from '../module.js';

/** Options of the class-index losses. */
export interface WeightedLossOptions {
  /** Per-class weights [C], registered as the buffer `weight` (as PyTorch's _WeightedLoss). */
  weight?: Tensor | null;
  /** Targets equal to this contribute nothing (default -100). */
  ignoreIndex?: number;
  /** 'mean' (default), 'sum' or 'none'. */
  reduction?: Reduction;
}

/** Cross entropy of logits against class indices or probabilities (torch.nn.CrossEntropyLoss). */
export class CrossEntropyLoss extends Module {
  /** Target value whose samples are skipped (and left out of the mean). */
  readonly ignoreIndex: number;
  /** 'mean', 'sum' or 'none'. */
  readonly reduction: Reduction;
  /** Mass moved from the target class to a uniform distribution, 0..1. */
  readonly labelSmoothing: number;
  /** Per-class weights [C] (a buffer), or null. */
  declare weight: Tensor | null;

  /** Options as torch.nn.CrossEntropyLoss's, in camelCase. */
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
  /** Target value whose samples are skipped (and left out of the mean). */
  readonly ignoreIndex: number;
  /** 'mean', 'sum' or 'none'. */
  readonly reduction: Reduction;
  /** Per-class weights [C] (a buffer), or null. */
  declare weight: Tensor | null;

  /** Options as torch.nn.NLLLoss's, in camelCase. */
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
  /** 'mean', 'sum' or 'none'. */
  readonly reduction: Reduction;

  /** Reduction as torch.nn.MSELoss's. */
  constructor(opts: { reduction?: Reduction } = {}) {
    super();
    this.reduction = opts.reduction ?? 'mean';
  }

  override forward(input: Tensor, target: Tensor): Tensor {
    return mseLoss(input, target, { reduction: this.reduction });
  }
}
