/**
 * Reductions (sum, mean, prod, max, min, argmax, argmin) over the last
 * dims of a strided view.
 *
 * Two strategies, chosen on the host from the sizes:
 * - 'thread': one thread per output walks the whole reduced block in order
 *   (workgroups of 256 outputs); best when there are many outputs.
 * - 'workgroup': one workgroup of 256 threads per output; thread t folds
 *   elements t, t+256, ... and a shared-memory tree (256 floats + 256 u32
 *   indices) combines the partials; best for few, long reductions.
 * Each element is read once. Shapes and strides of the outer and reduced
 * dims are uniforms. max/min propagate NaN; argmax/argmin take the first
 * occurrence (NaN counts as the extreme, as PyTorch).
 * float16 (`half`: 'x' and/or 'out'): packed words (wgsl/half.ts HalfIO),
 * read as exact f32 values; the accumulator is f32 (PyTorch accumulates
 * half reductions in float32) and a float16 result is rounded once.
 */
import type { DType, ReduceOp } from '@kiln/core';
import { PRELUDE, bufferDecl, convert, metaDecl, storageOf, toStored, type Scalar } from './common.js';
import { HalfIO } from './half.js';

export interface ReduceConfig {
  op: ReduceOp;
  strategy: 'thread' | 'workgroup';
  outerRank: number;
  redRank: number;
  xType: Scalar;
  compute: Scalar;
  outDtype: DType;
  /** 'x' and/or 'out' when they are float16 (x's xType is then 'f32'). */
  half?: string[];
}

export const REDUCE_WG = 256;
/** Meta layout: [0] outer count, [1] reduced count, [2] x offset, then shapes/strides. */
export const RM = { outer: 0, red: 1, offset: 2, outerShape: 3, outerStrides: 11, redShape: 19, redStrides: 27, outOffset: 35, words: 36 };

export function reduceKey(c: ReduceConfig): string {
  return `reduce:${c.op}:${c.strategy}:o${c.outerRank}:r${c.redRank}:${c.xType}:${c.compute}:${c.outDtype}${new HalfIO(c.half).key()}`;
}

/** Offset (relative) of the element with flat index `idx` over dims at shapeAt/strideAt. */
function walk(name: string, idx: string, rank: number, shapeAt: number, strideAt: number): string {
  const lines = [`var ${name} = 0u; { var rem = ${idx};`];
  for (let d = rank - 1; d >= 0; d--) {
    lines.push(`  { let n = mu(${shapeAt + d}u); ${name} += (rem % n) * mu(${strideAt + d}u); rem = rem / n; }`);
  }
  lines.push('}');
  return lines.join('\n  ');
}

export function reductionWgsl(c: ReduceConfig): string {
  const t = c.compute;
  const f = t === 'f32';
  const arg = c.op === 'argmax' || c.op === 'argmin';
  const isMax = c.op === 'max' || c.op === 'argmax';
  const lowest = f ? 'fbits(0xff800000u)' : 'i32(-2147483647 - 1)';
  const highest = f ? 'fbits(0x7f800000u)' : '2147483647';
  const init = { sum: f ? '0.0' : '0', mean: '0.0', prod: f ? '1.0' : '1', max: lowest, min: highest, argmax: lowest, argmin: highest }[c.op];
  const nan = (e: string) => (f ? `isnan_(${e})` : 'false');
  const beats = (v: string, b: string) => `((${nan(v)} && !${nan(b)}) || ${v} ${isMax ? '>' : '<'} ${b})`;
  // fold(acc, v): combine one new element into the running value.
  const fold = {
    sum: 'acc + v', mean: 'acc + v', prod: 'acc * v',
    max: `select(select(acc, v, v > acc), v, ${nan('v')})`,
    min: `select(select(acc, v, v < acc), v, ${nan('v')})`,
    argmax: '', argmin: '',
  }[c.op];
  const io = new HalfIO(c.half);
  const load = (off: string) => convert(io.ld('x', `mu(${RM.offset}u) + ${off}`), c.xType, t);
  const step = arg
    ? `if (${beats('v', 'acc')} || idx == 0xffffffffu) { acc = v; idx = r; }`
    : `acc = ${fold};`;
  const finish = c.op === 'mean'
    ? `select(acc / f32(mu(${RM.red}u)), fbits(0x7fc00000u), mu(${RM.red}u) == 0u)`
    : 'acc';
  const dst = `out[mu(${RM.outOffset}u) + o]`;
  const store = arg ? `${dst} = select(i32(idx), 0, idx == 0xffffffffu);`
    : io.has('out') ? io.st('out', `mu(${RM.outOffset}u) + o`, `f32(${finish})`) : `${dst} = ${toStored(finish, t, c.outDtype)};`;
  const header = `${metaDecl(RM.words)}
${PRELUDE}
${io.has('out') ? io.decl(1, 'out', { write: true }) : bufferDecl(1, 'out', storageOf(c.outDtype), true)}
${io.has('x') ? io.decl(2, 'x') : bufferDecl(2, 'x', c.xType)}
${io.helpers()}`;

  if (c.strategy === 'thread') {
    return `${header}
@compute @workgroup_size(${REDUCE_WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let o = (wid.y * nwg.x + wid.x) * ${REDUCE_WG}u + lid;
  if (o >= mu(${RM.outer}u)) { return; }
  ${walk('base', 'o', c.outerRank, RM.outerShape, RM.outerStrides)}
  var acc: ${t} = ${init};
  var idx = 0xffffffffu;
  for (var r = 0u; r < mu(${RM.red}u); r++) {
    ${walk('ro', 'r', c.redRank, RM.redShape, RM.redStrides)}
    let v = ${load('base + ro')};
    ${step}
  }
  ${store}
}
`;
  }
  // combine(a, b) of two partials (value + index) for the tree.
  const combine = arg
    ? `let take = ib != 0xffffffffu && (ia == 0xffffffffu || ${beats('vb', 'va')} || ((vb == va || (${nan('va')} && ${nan('vb')})) && ib < ia));
       if (take) { sv[lid] = vb; si[lid] = ib; }`
    : `sv[lid] = ${fold.replace(/\bacc\b/g, 'va').replace(/\bv\b/g, 'vb')};`;
  return `${header}
var<workgroup> sv: array<${t}, ${REDUCE_WG}>;
var<workgroup> si: array<u32, ${REDUCE_WG}>;
@compute @workgroup_size(${REDUCE_WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let o = wid.y * nwg.x + wid.x;
  let live = o < mu(${RM.outer}u);
  ${walk('base', 'select(0u, o, live)', c.outerRank, RM.outerShape, RM.outerStrides)}
  var acc: ${t} = ${init};
  var idx = 0xffffffffu;
  let n = select(0u, mu(${RM.red}u), live);
  for (var r = lid; r < n; r += ${REDUCE_WG}u) {
    ${walk('ro', 'r', c.redRank, RM.redShape, RM.redStrides)}
    let v = ${load('base + ro')};
    ${step}
  }
  sv[lid] = acc;
  si[lid] = idx;
  workgroupBarrier();
  for (var s = ${REDUCE_WG / 2}u; s > 0u; s = s >> 1u) {
    if (lid < s) {
      let va = sv[lid]; let vb = sv[lid + s];
      let ia = si[lid]; let ib = si[lid + s];
      ${combine}
    }
    workgroupBarrier();
  }
  if (lid == 0u && live) {
    acc = sv[0]; idx = si[0];
    ${store}
  }
}
`;
}
