import type { Tensor } from '../tensor.js';
import type { TensorOrScalar } from './util.js';
import { binary } from './binary.js';
import { unary } from './unary.js';

// Free-function forms of the Tensor methods, as torch.add(a, b) etc.
// A number first operand is allowed where PyTorch allows it (torch.sub(1, t)).

/** a + alpha * b */
export const add = (a: TensorOrScalar, b: TensorOrScalar): Tensor => binary('add', a, b);
/** a - b */
export const sub = (a: TensorOrScalar, b: TensorOrScalar): Tensor => binary('sub', a, b);
/** a * b */
export const mul = (a: TensorOrScalar, b: TensorOrScalar): Tensor => binary('mul', a, b);
/** a / b (true division) */
export const div = (a: TensorOrScalar, b: TensorOrScalar): Tensor => binary('div', a, b);
/** a ** b */
export const pow = (a: TensorOrScalar, b: TensorOrScalar): Tensor => binary('pow', a, b);
/** Elementwise max (NaN propagates; ties split the gradient). */
export const maximum = (a: TensorOrScalar, b: TensorOrScalar): Tensor => binary('maximum', a, b);
/** Elementwise min. */
export const minimum = (a: TensorOrScalar, b: TensorOrScalar): Tensor => binary('minimum', a, b);
export const eq = (a: TensorOrScalar, b: TensorOrScalar): Tensor => binary('eq', a, b);
export const ne = (a: TensorOrScalar, b: TensorOrScalar): Tensor => binary('ne', a, b);
export const lt = (a: TensorOrScalar, b: TensorOrScalar): Tensor => binary('lt', a, b);
export const le = (a: TensorOrScalar, b: TensorOrScalar): Tensor => binary('le', a, b);
export const gt = (a: TensorOrScalar, b: TensorOrScalar): Tensor => binary('gt', a, b);
export const ge = (a: TensorOrScalar, b: TensorOrScalar): Tensor => binary('ge', a, b);
export const logicalAnd = (a: TensorOrScalar, b: TensorOrScalar): Tensor => binary('logicalAnd', a, b);
export const logicalOr = (a: TensorOrScalar, b: TensorOrScalar): Tensor => binary('logicalOr', a, b);

export const neg = (x: Tensor): Tensor => unary('neg', x);
export const abs = (x: Tensor): Tensor => unary('abs', x);
export const exp = (x: Tensor): Tensor => unary('exp', x);
export const log = (x: Tensor): Tensor => unary('log', x);
export const sqrt = (x: Tensor): Tensor => unary('sqrt', x);
export const rsqrt = (x: Tensor): Tensor => unary('rsqrt', x);
export const sin = (x: Tensor): Tensor => unary('sin', x);
export const cos = (x: Tensor): Tensor => unary('cos', x);
export const tanh = (x: Tensor): Tensor => unary('tanh', x);
export const sigmoid = (x: Tensor): Tensor => unary('sigmoid', x);
export const relu = (x: Tensor): Tensor => unary('relu', x);
export const sign = (x: Tensor): Tensor => unary('sign', x);
export const floor = (x: Tensor): Tensor => unary('floor', x);
export const ceil = (x: Tensor): Tensor => unary('ceil', x);
export const round = (x: Tensor): Tensor => unary('round', x);
export const square = (x: Tensor): Tensor => unary('square', x);
export const reciprocal = (x: Tensor): Tensor => unary('reciprocal', x);
export const logicalNot = (x: Tensor): Tensor => unary('logicalNot', x);
/** Limits x to [min, max]; either bound may be omitted. */
export const clamp = (x: Tensor, min?: number | null, max?: number | null): Tensor =>
  unary('clamp', x, { min: min ?? undefined, max: max ?? undefined });
