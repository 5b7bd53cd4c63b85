import type { Tensor } from '../tensor.js';
import type { TensorOrScalar } from './util.js';
import { binary } from './binary.js';
import { unary } from './unary.js';

// Free-function forms of the Tensor methods, as torch.add(a, b) etc.
// A number first operand is allowed where PyTorch allows it (torch.sub(1, t)).

/** a + b, broadcasting (torch.add without alpha: scale b first, `add(a, mul(b, 2))`). */
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
/** a == b elementwise, as a bool tensor (NaN equals nothing). */
export const eq = (a: TensorOrScalar, b: TensorOrScalar): Tensor => binary('eq', a, b);
/** a != b elementwise, as a bool tensor (true wherever either is NaN). */
export const ne = (a: TensorOrScalar, b: TensorOrScalar): Tensor => binary('ne', a, b);
/** a < b elementwise, as a bool tensor. */
export const lt = (a: TensorOrScalar, b: TensorOrScalar): Tensor => binary('lt', a, b);
/** a <= b elementwise, as a bool tensor. */
export const le = (a: TensorOrScalar, b: TensorOrScalar): Tensor => binary('le', a, b);
/** a > b elementwise, as a bool tensor. */
export const gt = (a: TensorOrScalar, b: TensorOrScalar): Tensor => binary('gt', a, b);
/** a >= b elementwise, as a bool tensor. */
export const ge = (a: TensorOrScalar, b: TensorOrScalar): Tensor => binary('ge', a, b);
/** Elementwise logical and of the operands' truth values (nonzero is true), as a bool tensor. */
export const logicalAnd = (a: TensorOrScalar, b: TensorOrScalar): Tensor => binary('logicalAnd', a, b);
/** Elementwise logical or of the operands' truth values (nonzero is true), as a bool tensor. */
export const logicalOr = (a: TensorOrScalar, b: TensorOrScalar): Tensor => binary('logicalOr', a, b);

/** -x elementwise. */
export const neg = (x: Tensor): Tensor => unary('neg', x);
/** |x| elementwise. */
export const abs = (x: Tensor): Tensor => unary('abs', x);
/** e^x elementwise. */
export const exp = (x: Tensor): Tensor => unary('exp', x);
/** Natural logarithm elementwise (log(0) = -Inf, negative inputs give NaN). */
export const log = (x: Tensor): Tensor => unary('log', x);
/** Square root elementwise (negative inputs give NaN). */
export const sqrt = (x: Tensor): Tensor => unary('sqrt', x);
/** 1 / sqrt(x) elementwise. */
export const rsqrt = (x: Tensor): Tensor => unary('rsqrt', x);
/** Sine elementwise (radians). */
export const sin = (x: Tensor): Tensor => unary('sin', x);
/** Cosine elementwise (radians). */
export const cos = (x: Tensor): Tensor => unary('cos', x);
/** Hyperbolic tangent elementwise. */
export const tanh = (x: Tensor): Tensor => unary('tanh', x);
/** 1 / (1 + e^-x) elementwise. */
export const sigmoid = (x: Tensor): Tensor => unary('sigmoid', x);
/** max(x, 0) elementwise (NaN stays NaN). */
export const relu = (x: Tensor): Tensor => unary('relu', x);
/** -1, 0 or 1 by the sign of x (0 for NaN, as PyTorch). */
export const sign = (x: Tensor): Tensor => unary('sign', x);
/** Largest integer <= x, elementwise. */
export const floor = (x: Tensor): Tensor => unary('floor', x);
/** Smallest integer >= x, elementwise. */
export const ceil = (x: Tensor): Tensor => unary('ceil', x);
/** Round half to even, elementwise (torch.round). */
export const round = (x: Tensor): Tensor => unary('round', x);
/** x * x elementwise. */
export const square = (x: Tensor): Tensor => unary('square', x);
/** 1 / x elementwise. */
export const reciprocal = (x: Tensor): Tensor => unary('reciprocal', x);
/** Elementwise logical not (zero is false), as a bool tensor. */
export const logicalNot = (x: Tensor): Tensor => unary('logicalNot', x);
/** Limits x to [min, max]; either bound may be omitted. */
export const clamp = (x: Tensor, min?: number | null, max?: number | null): Tensor =>
  unary('clamp', x, { min: min ?? undefined, max: max ?? undefined });
