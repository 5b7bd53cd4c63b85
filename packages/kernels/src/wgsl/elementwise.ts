/**
 * Elementwise kernels: fill, copy/cast, unary, binary, where.
 *
 * One thread computes one output element; a workgroup is 256 threads over
 * consecutive flat output indices (the grid is 2-D only to pass 65535
 * workgroups). Each operand is read once per element, either at
 * `offset + i` (contiguous), through the generic rank-r stride walk
 * (strided or broadcast, stride 0), or from a scalar in the meta uniform.
 * Shapes and strides are uniforms; only rank, dtypes, op and operand kinds
 * are compiled in. No shared memory.
 * float16 operands and outputs (`half`: their array names) are packed
 * words (wgsl/half.ts HalfIO): read as their exact f32 values, computed in
 * f32 (as PyTorch's half elementwise kernels), the result rounded once to
 * float16 (nearest even) by the store. A float16 output shares each word
 * between two threads, so its stores are atomic; where the output is
 * contiguous, every operand contiguous (or a scalar) and none in the output's
 * buffer (`words`), one thread computes both halves of a word and stores it
 * whole instead (lavapipe, 8x64x112x112: f16 add 133 -> 41 ms, f16 -> f16
 * copy 105 -> 34 ms, f32 -> f16 cast 107 -> 34 ms, f32 add 62-66 ms).
 */
import type { BinaryOp, DType, UnaryOp } from '@kiln/core';
import { PRELUDE, bufferDecl, entry1d, metaDecl, storageOf, stridedOffsets, toStored, convert, type Scalar } from './common.js';
import { HalfIO } from './half.js';

/** How an operand is read. `src` names its array: 'out' when it shares the output buffer. */
export interface EwOperand {
  kind: 'contig' | 'strided' | 'scalar';
  /** The stored type of a buffer operand, the meta type of a scalar. */
  type: Scalar;
  src: string;
}

/** A compiled elementwise kernel's configuration (everything in its cache key). */
export interface EwConfig {
  /** e.g. 'binary.add', 'unary.exp', 'copy', 'fill', 'where'. */
  op: string;
  rank: number;
  compute: Scalar;
  operands: EwOperand[];
  out: { dtype: DType; kind: 'contig' | 'strided' };
  /** Distinct input arrays, bound after `out` in this order. */
  inputs: { name: string; type: Scalar }[];
  /** Extra compiled flags (clamp's min/max presence). */
  flags?: string;
  /** Arrays ('out', 'in0', ...) holding float16 words; their operands' `type` is 'f32'. */
  half?: string[];
  /**
   * One thread per float16 output word (two elements, one plain store):
   * only for a contiguous float16 output whose operands are all contiguous
   * or scalars and none reads the output buffer (ewWordThreads threads).
   */
  words?: boolean;
}

/** Threads of a `words` kernel: the float16 words an output of `total` elements at element `offset` touches. */
export function ewWordThreads(offset: number, total: number): number {
  return total === 0 ? 0 : ((offset + total - 1) >> 1) - (offset >> 1) + 1;
}

/** Meta word index of operand j's offset (operand 0 is the output). */
export const ewOperandAt = (j: number): number => 9 + 9 * j;
/** Meta word index of the k-th scalar parameter of a kernel with `nOps` input operands. */
export const ewScalarAt = (nOps: number, k: number): number => 9 + 9 * (nOps + 1) + k;

export function ewKey(c: EwConfig): string {
  const ops = c.operands.map((o) => `${o.kind[0]}${o.type}${o.src}`).join(',');
  return `ew:${c.op}:r${c.rank}:${c.compute}:${ops}:${c.out.dtype}${c.out.kind[0]}:${c.flags ?? ''}${new HalfIO(c.half).key()}${c.words ? ':w' : ''}`;
}

/** The WGSL for one unary op on compute type `t`; returns the result expression and its type. */
export function unaryExpr(op: UnaryOp, t: Scalar, a: string, p: { min: string | null; max: string | null }): [string, Scalar] {
  const f = t === 'f32';
  const z = f ? '0.0' : '0';
  const one = f ? '1.0' : '1';
  switch (op) {
    case 'neg': return [`-${a}`, t];
    case 'abs': return [`abs(${a})`, t];
    case 'exp': return [`exp(${a})`, t];
    case 'log': return [`log(${a})`, t];
    case 'sqrt': return [`sqrt(${a})`, t];
    case 'rsqrt': return [`inverseSqrt(${a})`, t];
    case 'sin': return [`sin(${a})`, t];
    case 'cos': return [`cos(${a})`, t];
    case 'tanh': return [`select(tanh(clamp(${a}, -15.0, 15.0)), ${a}, isnan_(${a}))`, t];
    case 'sigmoid': return [`(1.0 / (1.0 + exp(-${a})))`, t];
    case 'relu': return [`select(${a}, ${z}, ${a} < ${z})`, t];
    case 'sign':
      // PyTorch's sign(NaN) is 0.
      return f ? [`select(select(select(0.0, -1.0, ${a} < 0.0), 1.0, ${a} > 0.0), 0.0, isnan_(${a}))`, t] : [`sign(${a})`, t];
    case 'floor': return [f ? `floor(${a})` : a, t];
    case 'ceil': return [f ? `ceil(${a})` : a, t];
    case 'round': return [f ? `round(${a})` : a, t];
    case 'clamp': {
      let e = a;
      if (p.min !== null) e = `select(${e}, ${p.min}, ${e} < ${p.min})`;
      if (p.max !== null) e = `select(${e}, ${p.max}, ${e} > ${p.max})`;
      return [e, t];
    }
    case 'square': return [`(${a} * ${a})`, t];
    case 'reciprocal': return [`(${one} / ${a})`, t];
    case 'logicalNot': return [`select(0, 1, ${a} == ${z})`, 'i32'];
  }
}

/** The WGSL for one binary op on compute type `t`. */
export function binaryExpr(op: BinaryOp, t: Scalar, a: string, b: string): [string, Scalar] {
  const f = t === 'f32';
  const z = f ? '0.0' : '0';
  // IEEE comparisons with NaN: all false except !=. Tested on the bits, since WGSL lets a compiler assume no NaN.
  const cmp = (o: string): [string, Scalar] => {
    if (!f) return [`select(0, 1, ${a} ${o} ${b})`, 'i32'];
    const nan = `isnan_(${a}) || isnan_(${b})`;
    return [o === '!=' ? `select(0, 1, ${nan} || ${a} != ${b})` : `select(0, 1, !(${nan}) && ${a} ${o} ${b})`, 'i32'];
  };
  switch (op) {
    case 'add': return [`(${a} + ${b})`, t];
    case 'sub': return [`(${a} - ${b})`, t];
    case 'mul': return [`(${a} * ${b})`, t];
    case 'div': return [f ? `(${a} / ${b})` : `select(${a} / ${b}, 0, ${b} == 0)`, t];
    case 'pow': return [f ? `powf(${a}, ${b})` : `powi(${a}, ${b})`, t];
    case 'maximum': return [f ? `select(max(${a}, ${b}), ${a} + ${b}, isnan_(${a}) || isnan_(${b}))` : `max(${a}, ${b})`, t];
    case 'minimum': return [f ? `select(min(${a}, ${b}), ${a} + ${b}, isnan_(${a}) || isnan_(${b}))` : `min(${a}, ${b})`, t];
    case 'eq': return cmp('==');
    case 'ne': return cmp('!=');
    case 'lt': return cmp('<');
    case 'le': return cmp('<=');
    case 'gt': return cmp('>');
    case 'ge': return cmp('>=');
    case 'logicalAnd': return [`select(0, 1, ${a} != ${z} && ${b} != ${z})`, 'i32'];
    case 'logicalOr': return [`select(0, 1, ${a} != ${z} || ${b} != ${z})`, 'i32'];
  }
}

const POW = /* wgsl */ `
fn powf(a: f32, b: f32) -> f32 {
  if (b == 0.0) { return 1.0; }
  if (isnan_(a) || isnan_(b)) { return a + b; }
  if (a == 0.0) { return select(0.0, fbits(0x7f800000u), b < 0.0); }
  if (a < 0.0) {
    if (floor(b) != b) { return fbits(0x7fc00000u); }
    let m = pow(-a, b);
    return select(m, -m, abs(b) < 16777216.0 && (i32(b) & 1) == 1);
  }
  return pow(a, b);
}
fn powi(a: i32, b: i32) -> i32 {
  if (b < 0) { return select(select(0, select(-1, 1, (b & 1) == 0), a == -1), 1, a == 1); }
  var r = 1; var base = a; var e = b;
  loop { if (e == 0) { break; } if ((e & 1) == 1) { r = r * base; } base = base * base; e = e >> 1u; }
  return r;
}
`;

/**
 * WGSL for an elementwise kernel. `body(values)` maps the operands' values
 * (already converted to the compute type, except for where's condition) to
 * the result expression and its type.
 */
export function elementwiseWgsl(c: EwConfig, body: (v: string[]) => [string, Scalar]): string {
  const nOps = c.operands.length;
  const metaWords = ewScalarAt(nOps, 4);
  const io = new HalfIO(c.half);
  const outType = storageOf(c.out.dtype);
  const words = c.words === true && io.has('out');
  const decls = [
    io.has('out') ? io.decl(1, 'out', { write: true, pairs: words }) : bufferDecl(1, 'out', outType, true),
    ...c.inputs.map((inp, i) => (io.has(inp.name) ? io.decl(2 + i, inp.name) : bufferDecl(2 + i, inp.name, inp.type))),
    io.helpers(),
  ];
  const strided = [
    ...(c.out.kind === 'strided' ? [{ name: 'out', at: ewOperandAt(0) }] : []),
    ...c.operands.flatMap((o, j) => (o.kind === 'strided' ? [{ name: `v${j}`, at: ewOperandAt(j + 1) }] : [])),
  ];
  const values = c.operands.map((o, j) => {
    let raw: string;
    if (o.kind === 'scalar') raw = o.type === 'f32' ? `mf(${ewScalarAt(nOps, j)}u)` : `mi(${ewScalarAt(nOps, j)}u)`;
    else if (o.kind === 'contig') raw = io.ld(o.src, `mu(${ewOperandAt(j + 1)}u) + gi`);
    else raw = io.ld(o.src, `off_v${j}`);
    // where's condition (operand 0 of 'where') keeps its own type; others go to the compute type.
    return c.op === 'where' && j === 0 ? raw : convert(raw, o.type, c.compute);
  });
  const [expr, type] = body(values);
  if (words) {
    // Thread t owns output word k = floor(offset / 2) + t; its halves are the elements at flat
    // indices 2k - offset and 2k + 1 - offset, when those are in [0, total).
    return `${metaDecl(metaWords)}
${PRELUDE}
${c.op === 'binary.pow' ? POW : ''}
${decls.join('\n')}
fn ew_value(gi: u32) -> f32 { return f32(${expr}); }
${entry1d()}
  let base = mu(${ewOperandAt(0)}u);
  let total = mu(0u);
  if (gi >= ((base + total - 1u) >> 1u) - (base >> 1u) + 1u) { return; }
  let k = (base >> 1u) + gi;
  let has_lo = 2u * k >= base;
  let has_hi = 2u * k + 1u < base + total;
  ${io.st2('out', 'k', 'ew_value(2u * k - base)', 'ew_value(2u * k + 1u - base)', 'has_lo', 'has_hi')}
}
`;
  }
  const outIndex = c.out.kind === 'contig' ? `mu(${ewOperandAt(0)}u) + gi` : 'off_out';
  return `${metaDecl(metaWords)}
${PRELUDE}
${c.op === 'binary.pow' ? POW : ''}
${decls.join('\n')}
${entry1d()}
  if (gi >= mu(0u)) { return; }
  ${strided.length ? stridedOffsets('gi', c.rank, 1, strided) : ''}
  ${io.has('out') ? io.st('out', outIndex, `f32(${expr})`) : `out[${outIndex}] = ${toStored(expr, type, c.out.dtype)};`}
}
`;
}
