// THE mapping from reference op names (tests/reference/gen_ops.py) to Kiln
// calls, with each op's tolerance. One row per op; a reference case whose op
// has no row here fails (tests/ops.errors.test.ts checks coverage).
import * as kiln from '@kiln/core';
import type { Tensor } from '@kiln/core';
import { EXACT, type Tolerance } from '../helpers/compare.js';

/** Which parity test file runs an op. */
export type Family = 'elementwise' | 'reduce' | 'shape';

/** How to run one op in Kiln and how closely it must match PyTorch. */
export interface OpSpec {
  family: Family;
  /** Calls Kiln with the case's operands (views already applied) and its args. */
  run(inputs: Tensor[], args: Args, device: string): Tensor | Tensor[];
  /** Float outputs; integer and bool outputs are always compared exactly. */
  tol: Tolerance;
  /** Input gradients; defaults to `tol` loosened for the longer computation. */
  gradTol?: Tolerance;
}

type Args = Record<string, any>;

// Tolerances, from tightest to loosest, with the reason for each.
/** Copies, selections and sign flips: the value itself must come through. */
const COPY = EXACT;
/** One correctly rounded IEEE op (+ - *), but a GPU may contract or reorder. */
const ARITH: Tolerance = { rtol: 1e-6, atol: 1e-7 };
/** WGSL allows 2.5 ULP for division and inverse square root. */
const DIV: Tolerance = { rtol: 2e-6, atol: 1e-7 };
/** Transcendentals: WGSL's exp/log/pow/tanh allow several ULP (more for large |x|). */
const TRANSCENDENTAL: Tolerance = { rtol: 1e-5, atol: 1e-6 };
/** WGSL specifies sin/cos to an absolute error only. */
const TRIG: Tolerance = { rtol: 1e-5, atol: 1e-5 };
/** Sums: the order of accumulation differs between backends and from PyTorch. */
const REDUCTION: Tolerance = { rtol: 1e-5, atol: 1e-5 };
/** Dot products of up to ~70 terms. */
const GEMM: Tolerance = { rtol: 1e-5, atol: 2e-5 };

const unary = (f: (x: Tensor) => Tensor, tol: Tolerance): OpSpec => ({ family: 'elementwise', tol, run: ([x]) => f(x!) });
/** A binary op whose second operand is either inputs[1] or the scalar `args.other`. */
const binary = (f: (a: Tensor, b: Tensor | number) => Tensor, tol: Tolerance): OpSpec => ({
  family: 'elementwise',
  tol,
  run: ([a, b], args) => f(a!, b ?? (args.other as number)),
});
/** In-place ops act on a clone of inputs[0], as the generator does. */
const inPlace = (f: (a: Tensor, b: Tensor | number) => Tensor, tol: Tolerance): OpSpec => binary((a, b) => f(a.clone(), b), tol);
const reduce = (f: (x: Tensor, args: Args) => Tensor | Tensor[], tol: Tolerance): OpSpec => ({ family: 'reduce', tol, run: ([x], args) => f(x!, args) });
const shape = (f: (inputs: Tensor[], args: Args, device: string) => Tensor | Tensor[], tol: Tolerance = COPY): OpSpec => ({ family: 'shape', tol, run: f });

/** max/min: a tensor without dim, [values, indices] with one. */
const extremum = (which: 'max' | 'min') => reduce((x, a) => {
  if (a.dim === undefined) return x[which]();
  const { values, indices } = x[which](a.dim, a.keepdim);
  return [values, indices];
}, COPY);

export const OPS: Record<string, OpSpec> = {
  // ---- unary
  neg: unary((x) => x.neg(), COPY),
  abs: unary((x) => x.abs(), COPY),
  exp: unary((x) => x.exp(), TRANSCENDENTAL),
  log: unary((x) => x.log(), TRANSCENDENTAL),
  sqrt: unary((x) => x.sqrt(), DIV),
  rsqrt: unary((x) => x.rsqrt(), DIV),
  sin: unary((x) => x.sin(), TRIG),
  cos: unary((x) => x.cos(), TRIG),
  tanh: unary((x) => x.tanh(), TRANSCENDENTAL),
  sigmoid: unary((x) => x.sigmoid(), TRANSCENDENTAL),
  relu: unary((x) => x.relu(), COPY),
  sign: unary((x) => x.sign(), COPY),
  floor: unary((x) => x.floor(), COPY),
  ceil: unary((x) => x.ceil(), COPY),
  round: unary((x) => x.round(), COPY),
  clamp: { family: 'elementwise', tol: COPY, run: ([x], a) => x!.clamp(a.min, a.max) },

  // ---- binary (tensor or scalar operand)
  add: binary((a, b) => a.add(b), ARITH),
  sub: binary((a, b) => a.sub(b), ARITH),
  mul: binary((a, b) => a.mul(b), ARITH),
  div: binary((a, b) => a.div(b), DIV),
  pow: binary((a, b) => a.pow(b), TRANSCENDENTAL),
  maximum: binary((a, b) => a.maximum(b), COPY),
  minimum: binary((a, b) => a.minimum(b), COPY),
  eq: binary((a, b) => a.eq(b), COPY),
  ne: binary((a, b) => a.ne(b), COPY),
  lt: binary((a, b) => a.lt(b), COPY),
  le: binary((a, b) => a.le(b), COPY),
  gt: binary((a, b) => a.gt(b), COPY),
  ge: binary((a, b) => a.ge(b), COPY),
  where: { family: 'elementwise', tol: COPY, run: ([c, a, b]) => kiln.where(c!, a!, b!) },
  add_: inPlace((a, b) => a.add_(b), ARITH),
  sub_: inPlace((a, b) => a.sub_(b), ARITH),
  mul_: inPlace((a, b) => a.mul_(b), ARITH),
  div_: inPlace((a, b) => a.div_(b), DIV),

  // ---- reductions
  sum: reduce((x, a) => x.sum(a.dim, a.keepdim), REDUCTION),
  mean: reduce((x, a) => x.mean(a.dim, a.keepdim), REDUCTION),
  max: extremum('max'),
  min: extremum('min'),
  argmax: reduce((x, a) => x.argmax(a.dim, a.keepdim), COPY),
  argmin: reduce((x, a) => x.argmin(a.dim, a.keepdim), COPY),
  var: reduce((x, a) => x.var(a.dim, { correction: a.correction, keepdim: a.keepdim }), REDUCTION),
  std: reduce((x, a) => x.std(a.dim, { correction: a.correction, keepdim: a.keepdim }), REDUCTION),
  logsumexp: reduce((x, a) => x.logsumexp(a.dim, a.keepdim), TRANSCENDENTAL),
  softmax: reduce((x, a) => x.softmax(a.dim), TRANSCENDENTAL),
  logSoftmax: reduce((x, a) => x.logSoftmax(a.dim), TRANSCENDENTAL),

  // ---- matmul, joining, splitting, indexing
  matmul: shape(([a, b]) => a!.matmul(b!), GEMM),
  cat: shape((xs, a) => kiln.cat(xs, a.dim)),
  stack: shape((xs, a) => kiln.stack(xs, a.dim)),
  split: shape(([x], a) => x!.split(a.splitSize, a.dim)),
  chunk: shape(([x], a) => x!.chunk(a.chunks, a.dim)),
  gather: shape(([x, index], a) => x!.gather(a.dim, index!)),
  indexSelect: shape(([x, index], a) => x!.indexSelect(a.dim, index!)),
  pad: shape(([x], a) => kiln.pad(x!, a.pad, a.value)),

  // ---- views and copies
  clone: shape(([x]) => x!.clone()),
  contiguous: shape(([x]) => x!.contiguous()),
  reshape: shape(([x], a) => x!.reshape(a.shape)),
  view: shape(([x], a) => x!.view(a.shape)),
  permute: shape(([x], a) => x!.permute(a.dims)),
  transpose: shape(([x], a) => x!.transpose(a.dim0, a.dim1)),
  slice: shape(([x], a) => x!.slice(a.dim, a.start, a.end, a.step)),
  narrow: shape(([x], a) => x!.narrow(a.dim, a.start, a.length)),
  expand: shape(([x], a) => x!.expand(a.shape)),
  squeeze: shape(([x], a) => x!.squeeze(a.dim)),
  unsqueeze: shape(([x], a) => x!.unsqueeze(a.dim)),
  flatten: shape(([x], a) => x!.flatten(a.startDim, a.endDim)),
  T: shape(([x]) => x!.T),
  mT: shape(([x]) => x!.mT),

  // ---- creation (no inputs: the device comes from the backend under test)
  arange: shape((_, a, device) => (a.start === undefined ? kiln.arange(a.end, undefined, undefined, { device }) : kiln.arange(a.start, a.end, a.step, { device }))),
  eye: shape((_, a, device) => kiln.eye(a.n, a.m, { device })),
  full: shape((_, a, device) => kiln.full(a.shape, a.value, { device })),
  zeros: shape((_, a, device) => kiln.zeros(a.shape, { device })),
  ones: shape((_, a, device) => kiln.ones(a.shape, { device })),
};

/** Applies a reference input's view steps (tests/reference/common.py `apply_view`) to its base. */
export function applyView(base: Tensor, steps: readonly { op: string; args: unknown[] }[] = []): Tensor {
  let t = base;
  for (const { op, args } of steps) {
    const a = args as any[];
    if (op === 'transpose') t = t.transpose(a[0], a[1]);
    else if (op === 'permute') t = t.permute(a);
    else if (op === 'slice') t = t.slice(a[0], a[1], a[2], a[3]);
    else if (op === 'expand') t = t.expand(a);
    else throw new Error(`unknown view step '${op}' in reference file`);
  }
  return t;
}
