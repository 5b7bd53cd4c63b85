import { Tensor } from '../tensor.js';
import { needsAutocast, withAutocast } from '../autocast/autocast.js';
import type { BinaryOp, View } from '../backend.js';
import { isFloating, promoteTypes, promoteWithScalar, type DType } from '../dtype.js';
import { DTypeError, KilnError, ShapeError, fmtShape } from '../errors.js';
import { broadcastShapes, broadcastStrides, sameShape } from '../shape.js';
import { commonBackend, empty, sumTo, type TensorOrScalar } from './util.js';
import { finish } from '../autograd/record.js';
import type { BackwardFn } from '../autograd/node.js';
import { cast } from './unary.js';

const COMPARE = new Set<BinaryOp>(['eq', 'ne', 'lt', 'le', 'gt', 'ge']);
const LOGICAL = new Set<BinaryOp>(['logicalAnd', 'logicalOr']);

/** The dtype both operands are cast to before the primitive runs. */
function computeDtype(op: BinaryOp, a: TensorOrScalar, b: TensorOrScalar): DType {
  if (LOGICAL.has(op)) return 'bool';
  let dt: DType;
  if (typeof a === 'number' && typeof b === 'number') dt = 'float32';
  else if (typeof a === 'number') dt = promoteWithScalar((b as Tensor).dtype, a);
  else if (typeof b === 'number') dt = promoteWithScalar(a.dtype, b);
  else dt = promoteTypes(a.dtype, b.dtype);
  if (op === 'div' && !isFloating(dt)) dt = 'float32';
  if ((op === 'sub' || op === 'pow') && dt === 'bool' && typeof a !== 'number' && typeof b !== 'number') {
    throw new DTypeError(op, 'subtraction/pow of two bool tensors is not supported; use logicalXor/logicalAnd instead');
  }
  if (dt === 'bool' && (op === 'add' || op === 'mul' || op === 'sub' || op === 'div' || op === 'pow')) dt = op === 'add' || op === 'mul' ? 'bool' : 'int32';
  return dt;
}

type Operand = TensorOrScalar;
/**
 * Each binary op's gradients; `need` says which input gradients to compute
 * (only those operands' saved values are read). Results are reduced back
 * to each input's shape by the caller.
 */
const GRADS: Partial<Record<BinaryOp, (g: Tensor, a: Operand, b: Operand, y: Tensor | null, need: [boolean, boolean]) => [Tensor | null, Tensor | null]>> = {
  add: (g, _a, _b, _y, [na, nb]) => [na ? g : null, nb ? g : null],
  sub: (g, _a, _b, _y, [na, nb]) => [na ? g : null, nb ? g.neg() : null],
  mul: (g, a, b, _y, [na, nb]) => [na ? g.mul(b) : null, nb ? g.mul(a) : null],
  div: (g, a, b, _y, [na, nb]) => [na ? g.div(b) : null, nb ? g.mul(a).div((b as Tensor).square()).neg() : null],
  pow: (g, a, b, y, [na, nb]) => [
    na ? powBaseGrad(g, a as Tensor, b) : null,
    nb ? g.mul(y!).mul(typeof a === 'number' ? Math.log(a) : a.log()) : null,
  ],
  // Ties split the gradient evenly, as PyTorch does.
  maximum: (g, a, b, _y, need) => tieSplit(g, a, b, 'gt', need),
  minimum: (g, a, b, _y, need) => tieSplit(g, a, b, 'lt', need),
};

/** Which operand values (a, b, out) a gradient formula reads, given which grads are needed. */
function savedFor(op: BinaryOp, [na, nb]: [boolean, boolean]): [boolean, boolean, boolean] {
  switch (op) {
    case 'mul':
      return [nb, na, false];
    case 'div':
      return [nb, true, false];
    case 'pow':
      return [true, true, nb];
    case 'maximum':
    case 'minimum':
      return [true, true, false];
    default:
      return [false, false, false];
  }
}

function powBaseGrad(g: Tensor, a: Tensor, b: TensorOrScalar): Tensor {
  if (typeof b === 'number') return b === 0 ? g.mul(0) : g.mul(a.pow(b - 1)).mul(b);
  // Where the exponent is 0 the gradient is 0 (PyTorch masks it to avoid 0 * inf).
  return g.mul(b).mul(a.pow(b.sub(1))).mul(b.ne(0));
}

function tieSplit(g: Tensor, a: Operand, b: Operand, wins: 'gt' | 'lt', [na, nb]: [boolean, boolean]): [Tensor | null, Tensor | null] {
  const at = typeof a === 'number' ? (b as Tensor).mul(0).add(a) : a;
  const aWins = at[wins](b);
  const tie = at.eq(b);
  const halfTie = g.mul(0.5).mul(tie);
  return [na ? g.mul(aWins).add(halfTie) : null, nb ? g.mul(aWins.logicalNot().logicalAnd(tie.logicalNot())).add(halfTie) : null];
}

function operandView(x: TensorOrScalar, shape: readonly number[], dtype: DType = 'float32'): View | number {
  // A scalar is converted to the computation dtype first, as PyTorch's scalar_t.
  if (typeof x === 'number') return dtype === 'float32' ? Math.fround(x) : x;
  const v = x._view();
  return { ...v, shape, strides: broadcastStrides(v.shape, v.strides, shape) };
}

function checkOperand(op: string, x: unknown): TensorOrScalar {
  if (typeof x === 'boolean') return x ? 1 : 0;
  if (typeof x === 'number' || (x as Tensor | null)?._isKilnTensor) return x as TensorOrScalar;
  throw new KilnError(op, `expected a Tensor or a number, got ${x === null ? 'null' : typeof x}`);
}

/** a op b with broadcasting and type promotion, recorded for autograd. */
export function binary(op: BinaryOp, aIn: TensorOrScalar, bIn: TensorOrScalar): Tensor {
  if (needsAutocast(op, [aIn, bIn])) return withAutocast(op, [aIn, bIn], (a: TensorOrScalar, b: TensorOrScalar) => binary(op, a, b));
  const a0 = checkOperand(op, aIn);
  const b0 = checkOperand(op, bIn);
  if (typeof a0 === 'number' && typeof b0 === 'number') throw new KilnError(op, 'expected at least one Tensor operand, got two numbers');
  const backend = commonBackend(op, [a0, b0]);
  const dt = computeDtype(op, a0, b0);
  const a = typeof a0 === 'number' ? a0 : cast(a0, dt);
  const b = typeof b0 === 'number' ? b0 : cast(b0, dt);
  const shape = broadcastShapes(op, typeof a === 'number' ? [] : a.shape, typeof b === 'number' ? [] : b.shape);
  const out = empty(shape, COMPARE.has(op) || LOGICAL.has(op) ? 'bool' : dt, backend);
  if (out.numel() > 0) backend.binary(op, operandView(a, shape, dt), operandView(b, shape, dt), out._view());
  const grad = GRADS[op];
  let backward: BackwardFn | null = null;
  const saved: Tensor[] = [];
  if (grad && isFloating(dt)) {
    const need: [boolean, boolean] = [typeof a !== 'number' && a.requiresGrad, typeof b !== 'number' && b.requiresGrad];
    const [sa, sb, sy] = savedFor(op, need);
    if (sa && typeof a !== 'number') saved.push(a);
    if (sb && typeof b !== 'number') saved.push(b);
    if (sy) saved.push(out);
    backward = (g, s) => {
      let i = 0;
      const va = typeof a === 'number' ? a : sa ? s[i++]! : a;
      const vb = typeof b === 'number' ? b : sb ? s[i++]! : b;
      const y = sy ? s[i]! : null;
      const [ga, gb] = grad(g, va, vb, y, need);
      return [
        ga && typeof a !== 'number' ? sumTo(ga, a.shape) : null,
        gb && typeof b !== 'number' ? sumTo(gb, b.shape) : null,
      ];
    };
  }
  return finish(out, op, [a, b], {}, saved, backward);
}

/** a op= b in place: the result must keep a's shape and dtype (PyTorch's rules). */
export function binaryInPlace(op: BinaryOp, a: Tensor, bIn: TensorOrScalar): Tensor {
  const b = checkOperand(`${op}_`, bIn);
  const dt = computeDtype(op, a, b);
  if (promoteTypes(dt, a.dtype) !== a.dtype && !COMPARE.has(op)) {
    throw new DTypeError(`${op}_`, `result type ${dt} can't be cast to the desired output type ${a.dtype}`);
  }
  if (typeof b !== 'number') {
    const shape = broadcastShapes(`${op}_`, a.shape, b.shape);
    if (!sameShape(shape, a.shape)) throw new ShapeError(`${op}_`, `output with shape ${fmtShape(a.shape)} doesn't match the broadcast shape ${fmtShape(shape)}`);
  }
  const backend = commonBackend(`${op}_`, [a, b]);
  // add_, sub_: the gradient reads neither operand, so `a` needs no snapshot.
  const savesA = savedFor(op, [true, typeof b !== 'number' && b.requiresGrad])[0];
  return a._inPlace(`${op}_`, [b], (self) => binary(op, self, b === a ? self : b), () => {
    if (a.numel() === 0) return;
    let bv = typeof b === 'number' ? b : cast(b, a.dtype);
    // An operand sharing a's storage with another layout would be read after being overwritten.
    if (typeof bv !== 'number' && bv._storage === a._storage) bv = bv.clone();
    backend.binary(op, a._view(), operandView(bv, a.shape, a.dtype), a._view());
  }, savesA);
}

/** cond ? a : b elementwise with broadcasting (torch.where). */
export function where(cond: Tensor, aIn: TensorOrScalar, bIn: TensorOrScalar): Tensor {
  const a0 = checkOperand('where', aIn);
  const b0 = checkOperand('where', bIn);
  const backend = commonBackend('where', [cond, a0, b0]);
  if (cond.dtype !== 'bool') throw new DTypeError('where', `expected condition to be a boolean tensor, but got a tensor with dtype ${cond.dtype}`);
  const c = cond;
  let dt: DType;
  if (typeof a0 !== 'number' && typeof b0 !== 'number') dt = promoteTypes(a0.dtype, b0.dtype);
  else if (typeof a0 !== 'number') dt = promoteWithScalar(a0.dtype, b0 as number);
  else if (typeof b0 !== 'number') dt = promoteWithScalar(b0.dtype, a0);
  else dt = 'float32';
  const a = typeof a0 === 'number' ? a0 : cast(a0, dt);
  const b = typeof b0 === 'number' ? b0 : cast(b0, dt);
  const shape = broadcastShapes('where', c.shape, typeof a === 'number' ? [] : a.shape, typeof b === 'number' ? [] : b.shape);
  const out = empty(shape, dt, backend);
  if (out.numel() > 0) backend.where(operandView(c, shape, 'bool') as View, operandView(a, shape, dt), operandView(b, shape, dt), out._view());
  const backward: BackwardFn | null =
    isFloating(dt)
      ? (g, s) => [
          null,
          typeof a === 'number' ? null : sumTo(where(s[0]!, g, 0), a.shape),
          typeof b === 'number' ? null : sumTo(where(s[0]!, 0, g), b.shape),
        ]
      : null;
  return finish(out, 'where', [c, a, b], {}, [c], backward);
}
