import { Tensor } from '../tensor.js';
import { needsAutocast, withAutocast } from '../autocast/autocast.js';
import { isFloating } from '../dtype.js';
import { checkAlive } from './util.js';
import { DTypeError, KilnError, ShapeError, fmtShape } from '../errors.js';
import { tidy } from '../memory.js';
import { rand } from './creation.js';
import type { Generator } from '../random.js';
import { tracedAs } from './trace.js';
import { matmulBias } from './matmul.js';

/** y = x @ weightᵀ + bias over the last dim of x (torch.nn.functional.linear). */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  if (needsAutocast('linear', [x, weight, bias])) return withAutocast('linear', [x, weight, bias], linear);
  checkAlive('linear', x, weight, bias);
  if (weight.dim() !== 2) throw new ShapeError('linear', `expected a 2-D weight [out_features, in_features], got ${fmtShape(weight.shape)}`);
  if (x.dim() < 1 || x.shape[x.dim() - 1] !== weight.shape[1]) {
    throw new ShapeError('linear', `input's last dim must equal in_features: input ${fmtShape(x.shape)}, weight ${fmtShape(weight.shape)}`);
  }
  if (bias && (bias.dim() !== 1 || bias.shape[0] !== weight.shape[0])) throw new ShapeError('linear', `expected bias of shape [${weight.shape[0]}], got ${fmtShape(bias.shape)}`);
  if (!isFloating(x.dtype)) throw new DTypeError('linear', `expected a float input, got ${x.dtype}`);
  return tracedAs('linear', [x, weight, bias ?? null], {}, () => {
    // The bias rides in the GEMM epilogue (one pass over the output), unless its dtype differs from the product's.
    if (bias && bias.dtype === x.dtype && weight.dtype === x.dtype) return tidy(() => matmulBias(x, weight.mT, bias));
    return tidy(() => {
      const y = x.matmul(weight.mT);
      return bias ? y.add(bias) : y;
    });
  });
}

/**
 * Zeroes elements with probability p and scales the rest by 1/(1-p) when
 * training (torch.nn.functional.dropout), with Kiln's seeded generator.
 */
export function dropout(x: Tensor, p = 0.5, training = true, generator?: Generator): Tensor {
  checkAlive('dropout', x);
  if (!(p >= 0 && p <= 1)) throw new KilnError('dropout', `dropout probability has to be between 0 and 1, but got ${p}`);
  if (!training || p === 0) return x;
  if (p === 1) return tidy(() => x.mul(0));
  return tidy(() => {
    const keepMask = rand(x.shape, { device: x.device, generator }).ge(p);
    return x.mul(keepMask).mul(1 / (1 - p));
  });
}
