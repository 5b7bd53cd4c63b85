// Unary and binary elementwise ops, where, casts and copies.
import { onnxType, type Emitter, type EmitContext } from '../emit.js';
import type { GraphNode } from '../graph.js';
import { firstTensor, tensorInput } from './util.js';

const UNARY: Record<string, string> = {
  neg: 'Neg', abs: 'Abs', exp: 'Exp', log: 'Log', sqrt: 'Sqrt', sin: 'Sin', cos: 'Cos', tanh: 'Tanh',
  sigmoid: 'Sigmoid', relu: 'Relu', sign: 'Sign', floor: 'Floor', ceil: 'Ceil', round: 'Round',
  reciprocal: 'Reciprocal', logicalNot: 'Not',
};

/** Input 0, cast to the output's dtype when the op promotes (exp of an int tensor is float). */
function promotedInput(ctx: EmitContext, n: GraphNode): string {
  const x = tensorInput(n, 0);
  const want = n.outputs[0]!.dtype;
  if (x.dtype === want || n.op === 'logicalNot' || want === 'bool') return ctx.input(0);
  return ctx.emit('Cast', [ctx.input(0)], { to: onnxType(want) })[0]!;
}

const unary = (opType: string): Emitter => (ctx, n) => {
  ctx.emit(opType, [promotedInput(ctx, n)], {}, [ctx.out()]);
};

const rsqrt: Emitter = (ctx, n) => {
  const s = ctx.emit('Sqrt', [promotedInput(ctx, n)])[0]!;
  ctx.emit('Reciprocal', [s], {}, [ctx.out()]);
};

const square: Emitter = (ctx, n) => {
  const x = promotedInput(ctx, n);
  ctx.emit('Mul', [x, x], {}, [ctx.out()]);
};

const clamp: Emitter = (ctx, n) => {
  const dt = n.outputs[0]!.dtype;
  const bound = (b: number | undefined) => (b === undefined ? '' : ctx.constant([b], dt, []));
  ctx.emit('Clip', [promotedInput(ctx, n), bound(n.attrs.min), bound(n.attrs.max)], {}, [ctx.out()]);
};

const BINARY: Record<string, string> = {
  add: 'Add', sub: 'Sub', mul: 'Mul', div: 'Div', pow: 'Pow', maximum: 'Max', minimum: 'Min',
  eq: 'Equal', lt: 'Less', le: 'LessOrEqual', gt: 'Greater', ge: 'GreaterOrEqual',
  logicalAnd: 'And', logicalOr: 'Or',
};

/** Both operands as names; a number operand becomes a scalar of the tensor operand's dtype. */
function operands(ctx: EmitContext, n: GraphNode, from = 0): string[] {
  const dt = firstTensor(n)!.dtype;
  return n.inputs.slice(from).map((_, k) => ctx.input(from + k, dt));
}

const binary = (opType: string): Emitter => (ctx, n) => {
  ctx.emit(opType, operands(ctx, n), {}, [ctx.out()]);
};

const ne: Emitter = (ctx, n) => {
  const eq = ctx.emit('Equal', operands(ctx, n))[0]!;
  ctx.emit('Not', [eq], {}, [ctx.out()]);
};

const where: Emitter = (ctx, n) => {
  const dt = n.outputs[0]!.dtype;
  ctx.emit('Where', [ctx.input(0), ctx.input(1, dt), ctx.input(2, dt)], {}, [ctx.out()]);
};

const cast: Emitter = (ctx, n) => {
  ctx.emit('Cast', [ctx.input(0)], { to: onnxType(n.outputs[0]!.dtype) }, [ctx.out()]);
};

const identity: Emitter = (ctx, n) => {
  const x = tensorInput(n, 0);
  const out = n.outputs[0]!;
  const src = x.dtype === out.dtype ? ctx.input(0) : ctx.emit('Cast', [ctx.input(0)], { to: onnxType(out.dtype) })[0]!;
  ctx.emit('Identity', [src], {}, [ctx.out()]);
};

/** Mappings of the elementwise ops. */
export const ELEMENTWISE_EMITTERS: Record<string, Emitter> = {
  ...Object.fromEntries(Object.entries(UNARY).map(([op, t]) => [op, unary(t)])),
  ...Object.fromEntries(Object.entries(BINARY).map(([op, t]) => [op, binary(t)])),
  rsqrt,
  square,
  clamp,
  ne,
  where,
  cast,
  clone: identity,
  copy_: identity,
};
