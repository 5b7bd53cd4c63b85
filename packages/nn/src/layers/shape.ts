import { dropout, type Tensor } from '@kiln/core';
import { KilnError } from '@kiln/core';
import { Module } from '../module.js';
import { py, pyFloat } from '../repr.js';

/** Flattens dims startDim..endDim into one (torch.nn.Flatten; default keeps the batch dim). */
export class Flatten extends Module {
  /** First dim merged. */
  readonly startDim: number;
  /** Last dim merged (negative counts from the end). */
  readonly endDim: number;

  /** Merges dims startDim..endDim (default: all but the batch dim). */
  constructor(startDim = 1, endDim = -1) {
    super();
    this.startDim = startDim;
    this.endDim = endDim;
  }

  override forward(x: Tensor): Tensor {
    return x.flatten(this.startDim, this.endDim);
  }

  override extraRepr(): string {
    return `start_dim=${this.startDim}, end_dim=${this.endDim}`;
  }
}

/** Returns its input unchanged (torch.nn.Identity): a placeholder, e.g. for a removed head. */
export class Identity extends Module {
  override forward<T>(x: T): T {
    return x;
  }
}

/**
 * Zeroes elements with probability p during training and scales the rest
 * by 1/(1-p) (torch.nn.Dropout); the identity in eval mode.
 */
export class Dropout extends Module {
  /** Probability of zeroing an element. */
  readonly p: number;
  /** Overwrite the input instead of allocating. */
  readonly inplace: boolean;

  /** Zeroes with probability p in training; the identity in eval. */
  constructor(p = 0.5, opts: { inplace?: boolean } = {}) {
    super();
    if (!(p >= 0 && p <= 1)) throw new KilnError('Dropout', `dropout probability has to be between 0 and 1, but got ${p}`);
    this.p = p;
    this.inplace = opts.inplace ?? false;
  }

  override forward(x: Tensor): Tensor {
    const y = dropout(x, this.p, this.training);
    if (!this.inplace || y === x) return y;
    x.copy_(y);
    y.dispose();
    return x;
  }

  override extraRepr(): string {
    return `p=${pyFloat(this.p)}, inplace=${py(this.inplace)}`;
  }
}
