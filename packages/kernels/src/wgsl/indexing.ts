/**
 * Indexing kernels: gather, indexSelect, scatterAdd, indexAdd.
 *
 * One thread per OUTPUT element, 256 per workgroup. gather/indexSelect read
 * one index and one x element. scatterAdd/indexAdd are written race-free
 * and deterministic without float atomics: the thread owning out[p] loops
 * over the index entries that could land on p (index.shape[dim] of them,
 * or the index length), adds the src values whose index equals p's
 * coordinate along dim in index order, then writes out[p] once. Costs
 * out.numel * (entries along dim) reads, no atomics, bitwise reproducible.
 */
import { bufferDecl, entry1d, metaDecl, PRELUDE, type Scalar } from './common.js';

export type IndexOp = 'gather' | 'indexSelect' | 'scatterAdd' | 'indexAdd';

export interface IndexConfig {
  op: IndexOp;
  rank: number;
  type: Scalar;
}

/** Meta layout: counts, then out shape and (offset, strides) of out, x/src, index, and index shape. */
export const IM = { total: 0, dim: 1, loop: 2, shape: 4, out: 12, x: 21, index: 30, indexShape: 39, words: 47 };

export function indexKey(c: IndexConfig): string {
  return `index:${c.op}:r${c.rank}:${c.type}`;
}

export function indexingWgsl(c: IndexConfig): string {
  const R = c.rank;
  const scatter = c.op === 'scatterAdd' || c.op === 'indexAdd';
  const decls = scatter
    ? [bufferDecl(1, 'out', c.type, true), bufferDecl(2, 'src', c.type), bufferDecl(3, 'index', 'i32')]
    : [bufferDecl(1, 'out', c.type, true), bufferDecl(2, 'src', c.type), bufferDecl(3, 'index', 'i32')];
  // coords of the output element, and the dot products with each operand's strides
  const prologue = `
  var coord: array<u32, ${R}>;
  var rem = gi;
  for (var d = ${R - 1}; d >= 0; d--) { let n = mu(${IM.shape}u + u32(d)); coord[d] = rem % n; rem = rem / n; }
  let dim = mu(${IM.dim}u);
  var oOff = mu(${IM.out}u); var sOff = mu(${IM.x}u); var iOff = mu(${IM.index}u);
  for (var d = 0u; d < ${R}u; d++) {
    oOff += coord[d] * mu(${IM.out + 1}u + d);
    if (d != dim) { sOff += coord[d] * mu(${IM.x + 1}u + d); iOff += coord[d] * mu(${IM.index + 1}u + d); }
  }
  let cd = coord[dim];`;
  const zero = c.type === 'f32' ? '0.0' : '0';
  let body: string;
  switch (c.op) {
    case 'gather':
      body = `let i = u32(index[iOff + cd * mu(${IM.index + 1}u + dim)]);
  out[oOff] = src[sOff + i * mu(${IM.x + 1}u + dim)];`;
      break;
    case 'indexSelect':
      body = `let i = u32(index[mu(${IM.index}u) + cd * mu(${IM.index + 1}u)]);
  out[oOff] = src[sOff + i * mu(${IM.x + 1}u + dim)];`;
      break;
    case 'scatterAdd':
      body = `for (var d = 0u; d < ${R}u; d++) { if (d != dim && coord[d] >= mu(${IM.indexShape}u + d)) { return; } }
  var acc = ${zero};
  let is = mu(${IM.index + 1}u + dim); let ss = mu(${IM.x + 1}u + dim);
  for (var j = 0u; j < mu(${IM.loop}u); j++) {
    if (u32(index[iOff + j * is]) == cd) { acc += src[sOff + j * ss]; }
  }
  out[oOff] += acc;`;
      break;
    case 'indexAdd':
      body = `var acc = ${zero};
  let is = mu(${IM.index + 1}u); let ss = mu(${IM.x + 1}u + dim);
  for (var j = 0u; j < mu(${IM.loop}u); j++) {
    if (u32(index[mu(${IM.index}u) + j * is]) == cd) { acc += src[sOff + j * ss]; }
  }
  out[oOff] += acc;`;
      break;
  }
  return `${metaDecl(IM.words)}
${PRELUDE}
${decls.join('\n')}
${entry1d()}
  if (gi >= mu(${IM.total}u)) { return; }
  ${prologue}
  ${body}
}
`;
}
