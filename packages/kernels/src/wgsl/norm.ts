/**
 * Batch norm over contiguous [N, C, S] tensors (C channels, S = H*W).
 *
 * stats / backwardReduce: one workgroup of 256 threads per channel (channels
 * of at most 256 elements: one thread each, see NormReduce). Each
 * thread strides over the channel's N*S elements (reading x, and dy for
 * the backward), sums in registers, then a shared-memory tree reduction
 * (256 floats) combines them. Stats take two passes over the channel —
 * mean first, then squared deviations — as PyTorch does, so large means
 * do not cancel. backwardReduce produces Σdy and Σdy*xhat at once.
 * affine / backwardInput: one thread per element, reading x (and dy) once
 * and per-channel coefficients from small [C] buffers; no shared memory.
 * The grid is (ceil(S / 256), C, N), so a thread knows its channel without
 * dividing; the reductions walk their (n, s) pairs by adding and wrapping.
 * Integer division by a runtime value is a scalar division per lane on CPU
 * adapters (llvmpipe has no vector divide): per element it cost more than
 * the loads (measured with benchmarks/probes/norm.probe.ts).
 * float16 (`half`: any of x, dy, y, dx): packed words (wgsl/half.ts HalfIO)
 * read as their exact f32 values; statistics, coefficients and every sum
 * stay f32 (PyTorch's half batch norm accumulates in float32 and keeps
 * float32 statistics), and a float16 y or dx is rounded once. The kernel
 * text is the float32 kernel's with only the loads and stores swapped.
 */
import { entry1d, metaDecl, PRELUDE } from './common.js';
import { HalfIO } from './half.js';

export type NormKind = 'stats' | 'affine' | 'backwardReduce' | 'backwardInput';

/** Meta words: N, C, S, total elements, then the element offsets of each binding. */
export const NM = { N: 0, C: 1, S: 2, total: 3, off: 4, words: 16 };

/** Threads per workgroup (the reductions' tree width, the element kernels' run of s). */
export const NORM_WG = 256;

/**
 * How the element kernels (affine, backwardInput) find an element's channel:
 * 'planes' from a (ceil(S / 256), C, N) grid, with no division; 'flat' from a
 * 1-D grid, c = (gi / S) % C, for shapes whose planes exceed the grid's
 * 65535-per-dimension limit.
 */
export type NormGrid = 'planes' | 'flat';

/**
 * How the reductions (stats, backwardReduce) split a channel: 'tree', a
 * 256-thread workgroup per channel and a shared-memory tree; 'serial', one
 * thread per channel summing its N*S elements in order, for channels of at
 * most {@link SERIAL_MAX} elements (layer4 at 32x32 inputs has 1x1 planes:
 * N elements per channel, where the tree's barriers cost ~15 us per channel
 * on llvmpipe and left 255 of 256 threads idle).
 */
export type NormReduce = 'tree' | 'serial';

/** Largest channel (N*S elements) the serial reductions take: sums of at most 256 terms stay within the tree's rounding. */
export const SERIAL_MAX = 256;

/** Threads per workgroup of the serial reductions (one channel each). */
export const SERIAL_WG = 64;

/** Cache key of one batch-norm kernel; `half` names its float16 operands (x, dy, y, dx). */
export function normKey(kind: NormKind, half: string[] = [], grid: NormGrid = 'planes', reduce: NormReduce = 'tree'): string {
  return `norm:${kind}${new HalfIO(half).key()}${grid === 'flat' ? ':flat' : ''}${reduce === 'serial' ? ':serial' : ''}`;
}

const RG = NORM_WG;

const reduceTree = (names: string[]) => `
  workgroupBarrier();
  for (var stride = ${RG / 2}u; stride > 0u; stride = stride / 2u) {
    if (lid < stride) { ${names.map((n) => `${n}[lid] = ${n}[lid] + ${n}[lid + stride];`).join(' ')} }
    workgroupBarrier();
  }`;

/** Loop over channel c's elements: idx = off + (n*C + c)*S + s for the thread's share. */
const dimsDecl = `let N = mu(${NM.N}u); let C = mu(${NM.C}u); let S = mu(${NM.S}u); let M = N * S;`;
const channelLoop = (bodyCode: string) => `
  {
    // (n, s) of flat index k = n*S + s, advanced by ${RG} = dn*S + ds per step: the two
    // divisions are once per thread, the step adds and wraps once (ds < S). A wrap
    // loop instead ran ${RG} / S times per step: 256 on layer4's 1x1 planes.
    let S1 = max(S, 1u);
    var n = lid / S1; var s = lid % S1;
    let dn = ${RG}u / S1; let ds = ${RG}u % S1;
    for (var k = lid; k < M; k = k + ${RG}u) {
      let e = (n * C + c) * S + s;
      ${bodyCode}
      s = s + ds; n = n + dn;
      if (s >= S1) { s = s - S1; n = n + 1u; }
    }
  }`;

const off = (i: number) => `mu(${NM.off + i}u)`;

/** Declarations of `names` (binding i+1, the `written` ones read_write) and the float16 helpers they need. */
function decls(io: HalfIO, names: string[], written: string[]): string {
  const lines = names.map((n, i) => io.decl(i + 1, n, { write: written.includes(n) }));
  return `${lines.join('\n')}\n${io.helpers()}`;
}

/** Loop over channel c's elements in order, one thread: idx = off + (n*C + c)*S + s. */
const serialLoop = (bodyCode: string) => `
  for (var n = 0u; n < N; n = n + 1u) {
    for (var s = 0u; s < S; s = s + 1u) {
      let e = (n * C + c) * S + s;
      ${bodyCode}
    }
  }`;

const serialEntry = `@compute @workgroup_size(${SERIAL_WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let c = wid.x * ${SERIAL_WG}u + lid;`;

/** The reductions with one thread per channel (see {@link NormReduce}): the same two-pass statistics and sums. */
function serialReductionKernel(kind: 'stats' | 'backwardReduce', io: HalfIO): string {
  if (kind === 'stats') {
    return `${metaDecl(NM.words)}${PRELUDE}
${decls(io, ['x', 'mean', 'vari'], ['mean', 'vari'])}
${serialEntry}
  ${dimsDecl}
  if (c >= C) { return; }
  var sum = 0.0;
  ${serialLoop(`sum = sum + ${io.ld('x', `${off(0)} + e`)};`)}
  let mu_ = sum / f32(max(M, 1u));
  var sq = 0.0;
  ${serialLoop(`let d = ${io.ld('x', `${off(0)} + e`)} - mu_; sq = sq + d * d;`)}
  mean[${off(1)} + c] = mu_; vari[${off(2)} + c] = sq / f32(max(M, 1u));
}`;
  }
  return `${metaDecl(NM.words)}${PRELUDE}
${decls(io, ['dy', 'x', 'mean', 'invstd', 'sumdy', 'sumdyx'], ['sumdy', 'sumdyx'])}
${serialEntry}
  ${dimsDecl}
  if (c >= C) { return; }
  let m = mean[${off(2)} + c];
  let is = invstd[${off(3)} + c];
  var sg = 0.0;
  var sgx = 0.0;
  ${serialLoop(`let g = ${io.ld('dy', `${off(0)} + e`)}; sg = sg + g; sgx = sgx + g * (${io.ld('x', `${off(1)} + e`)} - m) * is;`)}
  sumdy[${off(4)} + c] = sg; sumdyx[${off(5)} + c] = sgx;
}`;
}

function reductionKernel(kind: 'stats' | 'backwardReduce', io: HalfIO): string {
  if (kind === 'stats') {
    return `${metaDecl(NM.words)}${PRELUDE}
${decls(io, ['x', 'mean', 'vari'], ['mean', 'vari'])}
var<workgroup> acc: array<f32, ${RG}>;
@compute @workgroup_size(${RG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let c = wid.x;
  ${dimsDecl}
  var sum = 0.0;
  ${channelLoop(`sum = sum + ${io.ld('x', `${off(0)} + e`)};`)}
  acc[lid] = sum;
  ${reduceTree(['acc'])}
  let mu_ = acc[0] / f32(max(M, 1u));
  workgroupBarrier();
  var sq = 0.0;
  ${channelLoop(`let d = ${io.ld('x', `${off(0)} + e`)} - mu_; sq = sq + d * d;`)}
  acc[lid] = sq;
  ${reduceTree(['acc'])}
  if (lid == 0u) { mean[${off(1)} + c] = mu_; vari[${off(2)} + c] = acc[0] / f32(max(M, 1u)); }
}`;
  }
  return `${metaDecl(NM.words)}${PRELUDE}
${decls(io, ['dy', 'x', 'mean', 'invstd', 'sumdy', 'sumdyx'], ['sumdy', 'sumdyx'])}
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
  ${channelLoop(`let g = ${io.ld('dy', `${off(0)} + e`)}; sg = sg + g; sgx = sgx + g * (${io.ld('x', `${off(1)} + e`)} - m) * is;`)}
  a0[lid] = sg;
  a1[lid] = sgx;
  ${reduceTree(['a0', 'a1'])}
  if (lid == 0u) { sumdy[${off(4)} + c] = a0[0]; sumdyx[${off(5)} + c] = a1[0]; }
}`;
}

/** Grid (ceil(S / RG), C, N): element gi = (n*C + c)*S + s with no division. */
const elementEntry = `@compute @workgroup_size(${RG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {`;

function elementKernel(kind: 'affine' | 'backwardInput', io: HalfIO, grid: NormGrid): string {
  const coords = grid === 'planes'
    ? `let C = mu(${NM.C}u); let S = mu(${NM.S}u);
  let s = wid.x * ${RG}u + lid; let c = wid.y;
  if (s >= S) { return; }
  let gi = (wid.z * C + c) * S + s;`
    : `if (gi >= mu(${NM.total}u)) { return; }
  let C = mu(${NM.C}u); let S = mu(${NM.S}u);
  let c = (gi / S) % C;`;
  const entry = grid === 'planes' ? elementEntry : entry1d();
  if (kind === 'affine') {
    return `${metaDecl(NM.words)}${PRELUDE}
${decls(io, ['x', 'scale', 'shift', 'y'], ['y'])}
${entry}
  ${coords}
  ${io.st('y', `${off(3)} + gi`, `${io.ld('x', `${off(0)} + gi`)} * scale[${off(1)} + c] + shift[${off(2)} + c]`)}
}`;
  }
  return `${metaDecl(NM.words)}${PRELUDE}
${decls(io, ['dy', 'x', 'mean', 'invstd', 'scale', 'sumdy', 'sumdyx', 'dx'], ['dx'])}
${entry}
  ${coords}
  let M = f32(mu(${NM.N}u) * S);
  let xhat = (${io.ld('x', `${off(1)} + gi`)} - mean[${off(2)} + c]) * invstd[${off(3)} + c];
  ${io.st('dx', `${off(7)} + gi`, `scale[${off(4)} + c] * (${io.ld('dy', `${off(0)} + gi`)} - sumdy[${off(5)} + c] / M - xhat * sumdyx[${off(6)} + c] / M)`)}
}`;
}

/**
 * The WGSL of one batch-norm kernel; `half` names its float16 operands (x,
 * dy, y, dx); `grid`: the element kernels' (see {@link NormGrid});
 * `reduce`: the reductions' (see {@link NormReduce}).
 */
export function normWgsl(kind: NormKind, half: string[] = [], grid: NormGrid = 'planes', reduce: NormReduce = 'tree'): string {
  const io = new HalfIO(half);
  if (kind === 'stats' || kind === 'backwardReduce') return reduce === 'serial' ? serialReductionKernel(kind, io) : reductionKernel(kind, io);
  return elementKernel(kind, io, grid);
}
