/**
 * Batched GEMM out[b] = epilogue(a[b] @ b[b]) over strided rank-3 views,
 * epilogue v = act(alpha * acc + bias[n or m] + residual[b, m, n]).
 *
 * Strategy 'register' (CPU adapters): no shared memory, no barriers. One
 * thread computes a TM x TN block of out (default 4 x 8), a workgroup of
 * 8 x 8 threads covers 32 x 64. Per k it reads TM values of A and TN of B
 * straight from global memory; 'vec' modes read B rows (and A rows) as
 * vec4 when the views are unit-stride and 16-byte aligned, else scalar
 * loads through the uniform strides.
 * Strategy 'tiled' (real GPUs): a 16 x 16 workgroup computes a 64 x 64
 * tile, each thread 4 x 4; per 16-wide K step the workgroup stages A and B
 * tiles (64 x 16 each, 8 KiB) in shared memory, zero-padded at the edges.
 */
import { bufferDecl, metaDecl, PRELUDE } from './common.js';

export interface GemmConfig {
  strategy: 'register' | 'tiled';
  /** register: rows/cols per thread; vec: 'ss' scalar, 'sv' vec4 B, 'vv' vec4 A and B. */
  tm: number;
  tn: number;
  vec: 'ss' | 'sv' | 'vv';
  /** register: threads per workgroup along n and m. */
  wg: [number, number];
  bias: 'none' | 'n' | 'm';
  residual: boolean;
  relu: boolean;
}

/** Meta word layout. */
export const GM = {
  M: 0, N: 1, K: 2, B: 3,
  a: 4, b: 8, out: 12, bias: 16, res: 18, alpha: 22, words: 23,
};
export const TILE = 64;

export function gemmKey(c: GemmConfig): string {
  return `gemm:${c.strategy}:${c.tm}x${c.tn}:w${c.wg.join('x')}:${c.vec}:${c.bias}:${c.residual ? 'r' : ''}${c.relu ? 'R' : ''}`;
}

/** Bindings: out, a, b, [bias], [residual]. */
function decls(c: GemmConfig): string {
  const vecA = c.strategy === 'register' && c.vec === 'vv';
  const vecB = c.strategy === 'register' && c.vec !== 'ss';
  const lines = [
    bufferDecl(1, 'out', 'f32', true),
    `@group(0) @binding(2) var<storage, read> A: array<${vecA ? 'vec4<f32>' : 'f32'}>;`,
    `@group(0) @binding(3) var<storage, read> Bm: array<${vecB ? 'vec4<f32>' : 'f32'}>;`,
  ];
  let next = 4;
  if (c.bias !== 'none') lines.push(bufferDecl(next++, 'bias', 'f32'));
  if (c.residual) lines.push(bufferDecl(next++, 'res', 'f32'));
  return lines.join('\n');
}

/** `fn epilogue(bt, m, n, acc)` storing one output element. */
function epilogue(c: GemmConfig): string {
  const g = GM;
  return `
fn store(bt: u32, m: u32, n: u32, acc: f32) {
  var v = mf(${g.alpha}u) * acc;
  ${c.bias === 'n' ? `v += bias[mu(${g.bias}u) + n * mu(${g.bias + 1}u)];` : ''}
  ${c.bias === 'm' ? `v += bias[mu(${g.bias}u) + m * mu(${g.bias + 1}u)];` : ''}
  ${c.residual ? `v += res[mu(${g.res}u) + bt * mu(${g.res + 1}u) + m * mu(${g.res + 2}u) + n * mu(${g.res + 3}u)];` : ''}
  ${c.relu ? 'v = select(v, 0.0, v < 0.0);' : ''}
  out[mu(${g.out}u) + bt * mu(${g.out + 1}u) + m * mu(${g.out + 2}u) + n * mu(${g.out + 3}u)] = v;
}`;
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/**
 * Copies the named accumulators into one private array and stores it with a
 * rolled loop: one inlined epilogue instead of TM*TN, which keeps cold
 * shader compiles on LLVM-based drivers short.
 */
function storeLoop(tm: number, tn: number, vec: boolean): string {
  const n = vec ? tm * (tn / 4) : tm * tn;
  const cols = vec ? tn / 4 : tn;
  const lines = [`var ov: array<${vec ? 'vec4<f32>' : 'f32'}, ${n}>;`];
  for (const i of range(tm)) for (const j of range(cols)) lines.push(`ov[${i * cols + j}] = acc${i}_${j};`);
  const value = vec ? `ov[i * ${cols}u + j / 4u][j % 4u]` : `ov[i * ${cols}u + j]`;
  lines.push(`for (var i = 0u; i < ${tm}u; i++) { for (var j = 0u; j < ${tn}u; j++) {
    if (m0 + i < M && n0 + j < N) { store(bt, m0 + i, n0 + j, ${value}); }
  } }`);
  return lines.join('\n  ');
}

function registerBody(c: GemmConfig): string {
  const { tm, tn } = c;
  const g = GM;
  const L: string[] = [];
  L.push(`let M = mu(${g.M}u); let N = mu(${g.N}u); let K = mu(${g.K}u); let bt = gid.z;`);
  L.push(`let m0 = gid.y * ${tm}u; let n0 = gid.x * ${tn}u;`);
  L.push('if (m0 >= M || n0 >= N) { return; }');
  const sak = `mu(${g.a + 3}u)`;
  const sbk = `mu(${g.b + 2}u)`;
  const aRow = (i: number) => `mu(${g.a}u) + bt * mu(${g.a + 1}u) + min(m0 + ${i}u, M - 1u) * mu(${g.a + 2}u)`;
  if (c.vec === 'vv') {
    // A rows as vec4 along k, B rows as vec4 along n; K % 4 == 0 and N % 4 == 0 (host-checked).
    const nv = tn / 4;
    for (const i of range(tm)) L.push(`let ar${i} = (${aRow(i)}) / 4u;`);
    L.push(`let bc = (mu(${g.b}u) + bt * mu(${g.b + 1}u)) / 4u; let sk4 = ${sbk} / 4u; let nv = N / 4u;`);
    for (const j of range(nv)) L.push(`let bc${j} = bc + min(n0 / 4u + ${j}u, nv - 1u);`);
    for (const i of range(tm)) for (const j of range(nv)) L.push(`var acc${i}_${j} = vec4<f32>(0.0);`);
    L.push('for (var k4 = 0u; k4 < K / 4u; k4++) {');
    for (const i of range(tm)) L.push(`  let a${i} = A[ar${i} + k4];`);
    L.push('  let kr = 4u * k4 * sk4;');
    for (const r of range(4)) for (const j of range(nv)) L.push(`  let b${r}_${j} = Bm[bc${j} + kr + ${r}u * sk4];`);
    for (const i of range(tm))
      for (const j of range(nv))
        L.push(`  acc${i}_${j} += a${i}.x * b0_${j} + a${i}.y * b1_${j} + a${i}.z * b2_${j} + a${i}.w * b3_${j};`);
    L.push('}');
    L.push(storeLoop(tm, tn, true));
  } else if (c.vec === 'sv') {
    const nv = tn / 4;
    for (const i of range(tm)) L.push(`let ar${i} = ${aRow(i)};`);
    L.push(`let bc = (mu(${g.b}u) + bt * mu(${g.b + 1}u)) / 4u; let sk4 = ${sbk} / 4u; let nv = N / 4u; let sak = ${sak};`);
    for (const j of range(nv)) L.push(`let bc${j} = bc + min(n0 / 4u + ${j}u, nv - 1u);`);
    for (const i of range(tm)) for (const j of range(nv)) L.push(`var acc${i}_${j} = vec4<f32>(0.0);`);
    L.push('var ka = 0u; var kb = 0u;');
    L.push('for (var k = 0u; k < K; k++) {');
    for (const i of range(tm)) L.push(`  let a${i} = A[ar${i} + ka];`);
    for (const j of range(nv)) L.push(`  let b${j} = Bm[bc${j} + kb];`);
    for (const i of range(tm)) for (const j of range(nv)) L.push(`  acc${i}_${j} += a${i} * b${j};`);
    L.push('  ka += sak; kb += sk4;');
    L.push('}');
    L.push(storeLoop(tm, tn, true));
  } else {
    for (const i of range(tm)) L.push(`let ar${i} = ${aRow(i)};`);
    L.push(`let bb = mu(${g.b}u) + bt * mu(${g.b + 1}u); let sbn = mu(${g.b + 3}u); let sak = ${sak}; let sbk = ${sbk};`);
    for (const j of range(tn)) L.push(`let bc${j} = bb + min(n0 + ${j}u, N - 1u) * sbn;`);
    for (const i of range(tm)) for (const j of range(tn)) L.push(`var acc${i}_${j} = 0.0;`);
    L.push('var ka = 0u; var kb = 0u;');
    L.push('for (var k = 0u; k < K; k++) {');
    for (const i of range(tm)) L.push(`  let a${i} = A[ar${i} + ka];`);
    for (const j of range(tn)) L.push(`  let b${j} = Bm[bc${j} + kb];`);
    for (const i of range(tm)) for (const j of range(tn)) L.push(`  acc${i}_${j} += a${i} * b${j};`);
    L.push('  ka += sak; kb += sbk;');
    L.push('}');
    L.push(storeLoop(tm, tn, false));
  }
  const [wx, wy] = c.wg;
  return `@compute @workgroup_size(${wx}, ${wy})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${L.join('\n  ')}
}`;
}

function tiledBody(): string {
  const g = GM;
  return `
const T = ${TILE}u;
const KT = 16u;
var<workgroup> As: array<f32, ${TILE * 16}>;
var<workgroup> Bs: array<f32, ${TILE * 16}>;
@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let M = mu(${g.M}u); let N = mu(${g.N}u); let K = mu(${g.K}u); let bt = wid.z;
  let mT = wid.y * T; let nT = wid.x * T;
  let aB = mu(${g.a}u) + bt * mu(${g.a + 1}u); let sam = mu(${g.a + 2}u); let sak = mu(${g.a + 3}u);
  let bB = mu(${g.b}u) + bt * mu(${g.b + 1}u); let sbk = mu(${g.b + 2}u); let sbn = mu(${g.b + 3}u);
  var acc: array<array<f32, 4>, 4>;
  for (var k0 = 0u; k0 < K; k0 += KT) {
    for (var e = li; e < T * KT; e += 256u) {
      // A tile stored k-major: As[kk * T + mm]; B tile: Bs[kk * T + nn].
      let mm = e / KT; let kk = e % KT;
      let am = mT + mm; let ak = k0 + kk;
      As[kk * T + mm] = select(0.0, A[aB + min(am, M - 1u) * sam + min(ak, K - 1u) * sak], am < M && ak < K);
      let kb = e / T; let nn = e % T;
      let bn = nT + nn; let bk = k0 + kb;
      Bs[kb * T + nn] = select(0.0, Bm[bB + min(bk, K - 1u) * sbk + min(bn, N - 1u) * sbn], bn < N && bk < K);
    }
    workgroupBarrier();
    for (var kk = 0u; kk < KT; kk++) {
      var a: array<f32, 4>; var b: array<f32, 4>;
      for (var i = 0u; i < 4u; i++) { a[i] = As[kk * T + lid.y + 16u * i]; b[i] = Bs[kk * T + lid.x + 16u * i]; }
      for (var i = 0u; i < 4u; i++) { for (var j = 0u; j < 4u; j++) { acc[i][j] += a[i] * b[j]; } }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    for (var j = 0u; j < 4u; j++) {
      let m = mT + lid.y + 16u * i; let n = nT + lid.x + 16u * j;
      if (m < M && n < N) { store(bt, m, n, acc[i][j]); }
    }
  }
}`;
}

export function gemmWgsl(c: GemmConfig): string {
  return `${metaDecl(GM.words)}
${PRELUDE}
${decls(c)}
${epilogue(c)}
${c.strategy === 'register' ? registerBody(c) : tiledBody()}
`;
}
