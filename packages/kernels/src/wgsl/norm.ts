/**
 * Batch norm over contiguous [N, C, S] tensors (C channels, S = H*W).
 *
 * stats / backwardReduce: one workgroup of 256 threads per channel. Each
 * thread strides over the channel's N*S elements (reading x, and dy for
 * the backward), sums in registers, then a shared-memory tree reduction
 * (256 floats) combines them. Stats take two passes over the channel —
 * mean first, then squared deviations — as PyTorch does, so large means
 * do not cancel. backwardReduce produces Σdy and Σdy*xhat at once.
 * affine / backwardInput: one thread per element, reading x (and dy) once
 * and per-channel coefficients from small [C] buffers; no shared memory.
 */
import { bufferDecl, entry1d, metaDecl, PRELUDE } from './common.js';

export type NormKind = 'stats' | 'affine' | 'backwardReduce' | 'backwardInput';

/** Meta words: N, C, S, total elements, then the element offsets of each binding. */
export const NM = { N: 0, C: 1, S: 2, total: 3, off: 4, words: 16 };

export function normKey(kind: NormKind): string {
  return `norm:${kind}`;
}

const RG = 256;

const reduceTree = (names: string[]) => `
  workgroupBarrier();
  for (var stride = ${RG / 2}u; stride > 0u; stride = stride / 2u) {
    if (lid < stride) { ${names.map((n) => `${n}[lid] = ${n}[lid] + ${n}[lid + stride];`).join(' ')} }
    workgroupBarrier();
  }`;

/** Loop over channel c's elements: idx = off + (n*C + c)*S + s for the thread's share. */
const dimsDecl = `let N = mu(${NM.N}u); let C = mu(${NM.C}u); let S = mu(${NM.S}u); let M = N * S;`;
const channelLoop = (bodyCode: string) => `
  for (var k = lid; k < M; k = k + ${RG}u) {
    let n = k / S; let s = k % S;
    let e = (n * C + c) * S + s;
    ${bodyCode}
  }`;

const off = (i: number) => `mu(${NM.off + i}u)`;

function reductionKernel(kind: 'stats' | 'backwardReduce'): string {
  if (kind === 'stats') {
    return `${metaDecl(NM.words)}${PRELUDE}
${bufferDecl(1, 'x', 'f32')}
${bufferDecl(2, 'mean', 'f32', true)}
${bufferDecl(3, 'vari', 'f32', true)}
var<workgroup> acc: array<f32, ${RG}>;
@compute @workgroup_size(${RG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let c = wid.x;
  ${dimsDecl}
  var sum = 0.0;
  ${channelLoop(`sum = sum + x[${off(0)} + e];`)}
  acc[lid] = sum;
  ${reduceTree(['acc'])}
  let mu_ = acc[0] / f32(max(M, 1u));
  workgroupBarrier();
  var sq = 0.0;
  ${channelLoop(`let d = x[${off(0)} + e] - mu_; sq = sq + d * d;`)}
  acc[lid] = sq;
  ${reduceTree(['acc'])}
  if (lid == 0u) { mean[${off(1)} + c] = mu_; vari[${off(2)} + c] = acc[0] / f32(max(M, 1u)); }
}`;
  }
  return `${metaDecl(NM.words)}${PRELUDE}
${bufferDecl(1, 'dy', 'f32')}
${bufferDecl(2, 'x', 'f32')}
${bufferDecl(3, 'mean', 'f32')}
${bufferDecl(4, 'invstd', 'f32')}
${bufferDecl(5, 'sumdy', 'f32', true)}
${bufferDecl(6, 'sumdyx', 'f32', true)}
var<workgroup> a0: array<f32, ${RG}>;
var<workgroup> a1: array<f32, ${RG}>;
@compute @workgroup_size(${RG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let c = wid.x;
  ${dimsDecl}
  let m = mean[${off(2)} + c];
  let is = invstd[${off(3)} + c];
  var sg = 0.0;
  var sgx = 0.0;
  ${channelLoop(`let g = dy[${off(0)} + e]; sg = sg + g; sgx = sgx + g * (x[${off(1)} + e] - m) * is;`)}
  a0[lid] = sg;
  a1[lid] = sgx;
  ${reduceTree(['a0', 'a1'])}
  if (lid == 0u) { sumdy[${off(4)} + c] = a0[0]; sumdyx[${off(5)} + c] = a1[0]; }
}`;
}

function elementKernel(kind: 'affine' | 'backwardInput'): string {
  const coords = `if (gi >= mu(${NM.total}u)) { return; }
  let C = mu(${NM.C}u); let S = mu(${NM.S}u);
  let c = (gi / S) % C;`;
  if (kind === 'affine') {
    return `${metaDecl(NM.words)}${PRELUDE}
${bufferDecl(1, 'x', 'f32')}
${bufferDecl(2, 'scale', 'f32')}
${bufferDecl(3, 'shift', 'f32')}
${bufferDecl(4, 'y', 'f32', true)}
${entry1d()}
  ${coords}
  y[${off(3)} + gi] = x[${off(0)} + gi] * scale[${off(1)} + c] + shift[${off(2)} + c];
}`;
  }
  return `${metaDecl(NM.words)}${PRELUDE}
${bufferDecl(1, 'dy', 'f32')}
${bufferDecl(2, 'x', 'f32')}
${bufferDecl(3, 'mean', 'f32')}
${bufferDecl(4, 'invstd', 'f32')}
${bufferDecl(5, 'scale', 'f32')}
${bufferDecl(6, 'sumdy', 'f32')}
${bufferDecl(7, 'sumdyx', 'f32')}
${bufferDecl(8, 'dx', 'f32', true)}
${entry1d()}
  ${coords}
  let M = f32(mu(${NM.N}u) * S);
  let xhat = (x[${off(1)} + gi] - mean[${off(2)} + c]) * invstd[${off(3)} + c];
  dx[${off(7)} + gi] = scale[${off(4)} + c] * (dy[${off(0)} + gi] - sumdy[${off(5)} + c] / M - xhat * sumdyx[${off(6)} + c] / M);
}`;
}

/** The WGSL of one batch-norm kernel. */
export function normWgsl(kind: NormKind): string {
  return kind === 'stats' || kind === 'backwardReduce' ? reductionKernel(kind) : elementKernel(kind);
}
