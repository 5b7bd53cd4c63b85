import type { Tensor } from '@kiln/core';
import { Module } from '../module.js';

/** max(x, 0) elementwise (torch.nn.ReLU); `inplace` overwrites the input. */
export class ReLU extends Module {
  /** Overwrite the input instead of allocating. */
  readonly inplace: boolean;

  /** `new ReLU()`, `new ReLU({ inplace: true })` or `new ReLU(true)`. */
  constructor(opts: boolean | { inplace?: boolean } = {}) {
    super();
    this.inplace = typeof opts === 'boolean' ? opts : (opts.inplace ?? false);
  }

  override forward(x: Tensor): Tensor {
    return this.inplace ? x.relu_() : x.relu();
  }

  override extraRepr(): string {
    return this.inplace ? 'inplace=True' : '';
  }
}
