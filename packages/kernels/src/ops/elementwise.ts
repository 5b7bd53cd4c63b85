/**
 * Backend glue for elementwise primitives: picks the compute type, merges
 * dimensions, classifies operands, packs the meta words and dispatches the
 * kernel from wgsl/elementwise.ts.
 */
import type { BinaryOp, DType, UnaryOp, UnaryParams, View } from '@kiln/core';
import type { GPUStorage } from '../pool.js';
import type { Runtime } from '../runtime.js';
import { grid1d, storageOf, type Scalar } from '../wgsl/common.js';
import { binaryExpr, elementwiseWgsl, ewKey, ewOperandAt, ewScalarAt, ewWordThreads, unaryExpr, type EwConfig, type EwOperand } from '../wgsl/elementwise.js';
import { coalesce, hasContiguousStrides, numel } from '../views.js';

type GView = View<GPUStorage>;

/** The value `dtype` stores for `x` (as core's castScalar: truncation, 8-bit wrapping, bool = x != 0). */
export function castScalar(dtype: DType, x: number): number {
  switch (dtype) {
    case 'float32': return Math.fround(x);
    // float16 operands are computed in float32, so their scalars are float32 too.
    case 'float16': return Math.fround(x);
    case 'int32': return Number.isFinite(x) ? Math.trunc(x) | 0 : 0;
    case 'int8': return (Math.trunc(x) << 24) >> 24;
    case 'uint8': return Math.trunc(x) & 0xff;
    case 'bool': return x !== 0 ? 1 : 0;
  }
}
type Operand = GView | { scalar: number; type: Scalar };

const isView = (o: Operand): o is GView => (o as GView).storage !== undefined;

/** A meta word buffer with typed writers. */
export class Meta {
  readonly u: Uint32Array;
  private readonly f: Float32Array;
  private readonly i: Int32Array;
  constructor(words: number) {
    this.u = new Uint32Array(words);
    this.f = new Float32Array(this.u.buffer);
    this.i = new Int32Array(this.u.buffer);
  }
  set(at: number, values: readonly number[]): this {
    for (let k = 0; k < values.length; k++) this.u[at + k] = values[k];
    return this;
  }
  f32(at: number, v: number): this {
    this.f[at] = v;
    return this;
  }
  i32(at: number, v: number): this {
    this.i[at] = v;
    return this;
  }
  scalar(at: number, v: number, t: Scalar): this {
    return t === 'f32' ? this.f32(at, v) : this.i32(at, castScalar('int32', v));
  }
}

/** Encodes one elementwise kernel over `out`'s shape. */
export function runElementwise(
  rt: Runtime,
  op: string,
  out: GView,
  operands: Operand[],
  compute: Scalar,
  body: (v: string[]) => [string, Scalar],
  extra: { flags?: string; scalars?: number[] } = {},
): void {
  const total = numel(out.shape);
  if (total === 0) return;
  const views = operands.filter(isView);
  const merged = coalesce(out.shape, [out.strides, ...views.map((v) => v.strides)]);
  const contiguous = (s: number[]) => hasContiguousStrides(merged.shape, s);
  const inputs: { name: string; type: Scalar; buffer: GPUBuffer }[] = [];
  // float16 arrays: read and written as packed words, their values f32 (wgsl/elementwise.ts).
  const half = new Set<string>(out.dtype === 'float16' ? ['out'] : []);
  const typeOf = (v: GView): Scalar => (v.dtype === 'float16' ? 'f32' : storageOf(v.dtype));
  const ewOps: EwOperand[] = [];
  let vi = 0;
  for (const o of operands) {
    if (!isView(o)) {
      ewOps.push({ kind: 'scalar', type: o.type, src: '' });
      continue;
    }
    const strides = merged.strides[1 + vi++];
    const buffer = o.storage.buffer;
    let src = 'out';
    if (buffer !== out.storage.buffer) {
      let inp = inputs.find((x) => x.buffer === buffer);
      if (!inp) inputs.push((inp = { name: `in${inputs.length}`, type: typeOf(o), buffer }));
      src = inp.name;
    }
    if (o.dtype === 'float16') half.add(src);
    ewOps.push({ kind: contiguous(strides) ? 'contig' : 'strided', type: typeOf(o), src });
  }
  const outKind = contiguous(merged.strides[0]) ? 'contig' : 'strided';
  const anyStrided = outKind === 'strided' || ewOps.some((o) => o.kind === 'strided');
  const rank = anyStrided ? merged.shape.length : 1;
  const config: EwConfig = {
    op, rank, compute, operands: ewOps, out: { dtype: out.dtype, kind: outKind },
    inputs: inputs.map(({ name, type }) => ({ name, type })), flags: extra.flags,
  };
  if (half.size) config.half = [...half];
  // A contiguous float16 output computed from contiguous operands in other buffers: one thread per word, no atomics.
  const words = out.dtype === 'float16' && !anyStrided && ewOps.every((o) => o.src !== 'out');
  if (words) config.words = true;
  const meta = new Meta(ewScalarAt(operands.length, 4));
  meta.u[0] = total;
  meta.set(1, merged.shape);
  meta.u[ewOperandAt(0)] = out.offset;
  meta.set(ewOperandAt(0) + 1, merged.strides[0]);
  vi = 0;
  operands.forEach((o, j) => {
    if (isView(o)) {
      meta.u[ewOperandAt(j + 1)] = o.offset;
      meta.set(ewOperandAt(j + 1) + 1, merged.strides[1 + vi++]);
    } else meta.scalar(ewScalarAt(operands.length, j), o.scalar, o.type);
  });
  (extra.scalars ?? []).forEach((v, k) => meta.scalar(ewScalarAt(operands.length, operands.length + k), v, compute));
  rt.dispatch({
    kernel: op,
    key: ewKey(config),
    code: () => elementwiseWgsl(config, body),
    bindings: [{ buffer: out.storage.buffer, write: true }, ...inputs.map((x) => ({ buffer: x.buffer }))],
    meta: meta.u,
    workgroups: grid1d(words ? ewWordThreads(out.offset, total) : total),
  });
}

const isFloatDtype = (d: DType) => d === 'float32' || d === 'float16';
const isFractional = (x: number) => !Number.isInteger(x);

export function fill(rt: Runtime, out: GView, value: number): void {
  const t = storageOf(out.dtype);
  const stored = castScalar(out.dtype, value);
  runElementwise(rt, 'fill', out, [{ scalar: stored, type: t }], t, (v) => [v[0], t]);
}

export function copy(rt: Runtime, x: GView, out: GView): void {
  const t = storageOf(x.dtype);
  runElementwise(rt, 'copy', out, [x], t, (v) => [v[0], t]);
}

export function unary(rt: Runtime, op: UnaryOp, x: GView, out: GView, params: UnaryParams = {}): void {
  const fl = isFloatDtype(x.dtype) || (isFloatDtype(out.dtype) && op !== 'logicalNot');
  const t: Scalar = fl ? 'f32' : 'i32';
  const hasMin = op === 'clamp' && params.min !== undefined && params.min !== null;
  const hasMax = op === 'clamp' && params.max !== undefined && params.max !== null;
  const scalars = op === 'clamp' ? [params.min ?? 0, params.max ?? 0] : [];
  const at = (k: number) => ewScalarAt(1, 1 + k);
  const pm = (k: number) => (t === 'f32' ? `mf(${at(k)}u)` : `mi(${at(k)}u)`);
  runElementwise(rt, `unary.${op}`, out, [x], t,
    (v) => unaryExpr(op, t, v[0], { min: hasMin ? pm(0) : null, max: hasMax ? pm(1) : null }),
    { flags: op === 'clamp' ? `${hasMin ? 'm' : ''}${hasMax ? 'M' : ''}` : '', scalars });
}

const COMPARISONS = new Set<BinaryOp>(['eq', 'ne', 'lt', 'le', 'gt', 'ge', 'logicalAnd', 'logicalOr']);

export function binary(rt: Runtime, op: BinaryOp, a: GView | number, b: GView | number, out: GView): void {
  const ops = [a, b];
  const anyFloat =
    ops.some((o) => (typeof o === 'number' ? isFractional(o) : isFloatDtype(o.dtype))) ||
    (!COMPARISONS.has(op) && isFloatDtype(out.dtype));
  const t: Scalar = anyFloat ? 'f32' : 'i32';
  const operands: Operand[] = ops.map((o) => (typeof o === 'number' ? { scalar: o, type: t } : o));
  runElementwise(rt, `binary.${op}`, out, operands, t, (v) => binaryExpr(op, t, v[0], v[1]));
}

export function where(rt: Runtime, cond: GView, a: GView | number, b: GView | number, out: GView): void {
  const anyFloat = isFloatDtype(out.dtype) || [a, b].some((o) => (typeof o === 'number' ? isFractional(o) : isFloatDtype(o.dtype)));
  const t: Scalar = anyFloat ? 'f32' : 'i32';
  const operands: Operand[] = [cond, ...[a, b].map((o) => (typeof o === 'number' ? { scalar: o, type: t } : o))];
  const zero = storageOf(cond.dtype) === 'f32' ? '0.0' : '0';
  runElementwise(rt, 'where', out, operands, t, (v) => [`select(${v[2]}, ${v[1]}, ${v[0]} != ${zero})`, t]);
}

/** out = x <= threshold ? 0 : grad (PyTorch's threshold_backward; relu's gradient in one pass, NaN in x passes grad). */
export function thresholdBackward(rt: Runtime, grad: GView, x: GView, threshold: number, out: GView): void {
  const thr = `mf(${ewScalarAt(2, 2)}u)`;
  runElementwise(rt, 'thresholdBackward', out, [grad, x], 'f32', (v) => [`select(${v[0]}, 0.0, ${v[1]} <= ${thr})`, 'f32'], { scalars: [threshold] });
}
