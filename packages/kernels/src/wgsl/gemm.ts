/**
 * Batched GEMM out[b] = epilogue(a[b] @ b[b]) over strided rank-3 views,
 * epilogue v = act(alpha * acc + bias[n or m] + residual[b, m, n]). The
 * epilogue is chosen at run time by meta flags, so bias/residual/ReLU
 * variants share one compiled pipeline.
 *
 * Strategy 'register' (CPU adapters): no shared memory, no barriers. One
 * thread computes a TM x TN block of out, a workgroup of WX x WY threads
 * covers (WY*TM) x (WX*TN). Per k it reads TM values of A and TN of B
 * straight from global memory. Loads are vec4 where the views allow it:
 * A along k ('k4'), B along n ('n4', accumulators are vec4 rows; B rows
 * may be padded to 4) or along k ('k4', the x @ W^T layout); then k
 * advances 4 per iteration. CPU drivers (llvmpipe) run a workgroup as SIMD
 * lanes and pay a scalar load per lane for every load whose address varies
 * by lane, while one FMA covers all lanes; so with shareA = S (WY = 1, TM a
 * multiple of S) every lane of a subgroup has the same rows, lane s loads
 * rows m0 + g*S + s, and subgroupBroadcast hands each row to every lane:
 * A costs one load per S rows instead of one per row. grid 'mn' makes
 * workgroup_id.x walk row blocks, so workgroups running at the same time
 * share their B panel in cache; cols 'interleave' gives a thread columns WX
 * apart instead of consecutive ones. There is no early return and no
 * per-load bounds check: edge threads clamp their row/column bases
 * (reading valid, unused data) and only the store is guarded.
 * Strategy 'tiled' (real GPUs): a 16 x 16 workgroup computes a 64 x 64
 * tile, each thread 4 x 4; per 16-wide K step the workgroup stages A and B
 * tiles (64 x 16 each, 8 KiB) in shared memory, zero-padded at the edges.
 * float16 (`half`, per operand, either strategy): the named operands are
 * packed float16 words (wgsl/half.ts HalfIO): loads unpack to f32 (a vec4
 * load reads 8 bytes instead of 16), the accumulators and the epilogue stay
 * f32 (PyTorch accumulates half GEMMs in f32), and each output element is
 * rounded once to float16 (nearest even) when stored.
 */
import { metaDecl, PRELUDE } from './common.js';
import { HalfIO } from './half.js';
import { gemmInt8Wgsl, int8Key, type Int8Gemm } from './gemm-int8.js';

/** How an operand is read: scalar through its strides, or vec4 along k or n (unit stride, 16-byte aligned). */
export type GemmLoad = 's' | 'k4' | 'n4';

export interface GemmConfig {
  strategy: 'register' | 'tiled';
  /** register: rows/cols of out per thread (tn % 4 == 0 when b is 'n4'). */
  tm: number;
  tn: number;
  /** register: threads per workgroup along n and m. */
  wg: [number, number];
  /** register: A as 's' or 'k4'; B as 's', 'k4' or 'n4'. */
  a: 's' | 'k4';
  b: GemmLoad;
  /** register: a thread's column units are its own consecutive ones ('block') or WX apart ('interleave'). */
  cols: 'block' | 'interleave';
  /** register: 'nm' = workgroup_id.x walks column blocks; 'mn' = it walks row blocks (consecutive workgroups share B). */
  grid: 'nm' | 'mn';
  /**
   * register: subgroup size S when A is shared through the subgroup (0: off).
   * Then WY = 1 and TM % S == 0: lane s loads rows m0 + g*S + s and
   * subgroupBroadcast hands each row to every lane, so a subgroup loads each
   * A element once instead of once per lane.
   */
  shareA: number;
  /** register: the int8 GEMM (int32 accumulation, packed operands, requantizing epilogue; see gemm-int8.ts). */
  int8?: Int8Gemm;
  /** The operands stored as float16 (packed words): out, A, Bm (b), bias, res; the others are f32. */
  half?: readonly GemmOperand[];
}

/** The WGSL names of a GEMM's operands. */
export type GemmOperand = 'out' | 'A' | 'Bm' | 'bias' | 'res';

/**
 * Meta word layout; `epi` holds the epilogue flags (bit 0/1: bias on n/m, bit 2: residual, bit 3: relu);
 * `bn` is how many columns of each B row may be read ('n4': N, or N rounded up to 4 when rows are padded).
 */
export const GM = {
  M: 0, N: 1, K: 2, B: 3,
  a: 4, b: 8, out: 12, bias: 16, res: 18, alpha: 22, epi: 23, bn: 24, words: 25,
};
export const EPI = { biasN: 1, biasM: 2, residual: 4, relu: 8 };
export const TILE = 64;

export function gemmKey(c: GemmConfig): string {
  const base = c.strategy === 'tiled' ? 'gemm:tiled' : `gemm:register:${c.tm}x${c.tn}:w${c.wg.join('x')}:${c.a}${c.b}:${c.cols}:${c.grid}:sg${c.shareA}`;
  return c.int8 ? `${base}:${int8Key(c.int8)}` : base + new HalfIO(c.half).key();
}

/** Bindings: out, a, b, bias, residual (the last two bound to a dummy when unused). */
function decls(c: GemmConfig, io: HalfIO): string {
  const reg = c.strategy === 'register';
  return [
    io.decl(1, 'out', { write: true }),
    io.decl(2, 'A', { vec4: reg && c.a === 'k4' }),
    io.decl(3, 'Bm', { vec4: reg && c.b !== 's' }),
    io.decl(4, 'bias'),
    io.decl(5, 'res'),
    io.helpers(),
  ].join('\n');
}

/** `fn store(bt, m, n, acc)`: the epilogue for one output element; flags are uniform, so branches are free. */
function epilogue(io: HalfIO): string {
  const g = GM;
  return `
fn store(bt: u32, m: u32, n: u32, acc: f32) {
  let epi = mu(${g.epi}u);
  var v = mf(${g.alpha}u) * acc;
  if ((epi & 3u) != 0u) { v += ${io.ld('bias', `mu(${g.bias}u) + select(m, n, (epi & 1u) != 0u) * mu(${g.bias + 1}u)`)}; }
  if ((epi & 4u) != 0u) { v += ${io.ld('res', `mu(${g.res}u) + bt * mu(${g.res + 1}u) + m * mu(${g.res + 2}u) + n * mu(${g.res + 3}u)`)}; }
  if ((epi & 8u) != 0u) { v = select(v, 0.0, v < 0.0); }
  ${io.st('out', `mu(${g.out}u) + bt * mu(${g.out + 1}u) + m * mu(${g.out + 2}u) + n * mu(${g.out + 3}u)`, 'v')}
}`;
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const comp = ['x', 'y', 'z', 'w'];

/**
 * Copies the named accumulators into one private array and stores it with a
 * rolled loop: one inlined epilogue instead of TM*TN, which keeps cold
 * shader compiles on LLVM-based drivers short. `cu{j}` is the first column
 * of the thread's j-th column unit (vw columns wide).
 */
function storeLoop(tm: number, units: number, vw: number): string {
  const lines = [`var ov: array<${vw === 4 ? 'vec4<f32>' : 'f32'}, ${tm * units}>;`, `var cu: array<u32, ${units}>;`];
  for (const i of range(tm)) for (const j of range(units)) lines.push(`ov[${i * units + j}] = acc${i}_${j};`);
  for (const j of range(units)) lines.push(`cu[${j}] = cu${j};`);
  const value = vw === 4 ? `ov[i * ${units}u + j][c]` : `ov[i * ${units}u + j]`;
  lines.push(`for (var i = 0u; i < ${tm}u; i++) { for (var j = 0u; j < ${units}u; j++) { for (var c = 0u; c < ${vw}u; c++) {
    let n = cu[j] + c;
    if (m0 + i < M && n < N) { store(bt, m0 + i, n, ${value}); }
  } } }`);
  return lines.join('\n  ');
}

function registerBody(c: GemmConfig, io: HalfIO): string {
  const { tm, tn } = c;
  const [wx, wy] = c.wg;
  const g = GM;
  const L: string[] = [];
  const k4 = c.a === 'k4' || c.b === 'k4';
  const vw = c.b === 'n4' ? 4 : 1;
  const units = tn / vw;
  const [colWg, rowWg] = c.grid === 'mn' ? ['wid.y', 'wid.x'] : ['wid.x', 'wid.y'];
  L.push(`let M = mu(${g.M}u); let N = mu(${g.N}u); let K = mu(${g.K}u); let bt = wid.z;`);
  // wy == 1: rows from workgroup_id only (uniform across the workgroup's lanes).
  L.push(`let m0 = ${wy === 1 ? rowWg : `(${rowWg} * ${wy}u + lid.y)`} * ${tm}u;`);
  // Column units: a thread's own TN/vw consecutive units ('block'), or units WX apart ('interleave').
  for (const j of range(units)) {
    const unit = c.cols === 'interleave' ? `${colWg} * ${wx * units}u + lid.x + ${j * wx}u` : `(${colWg} * ${wx}u + lid.x) * ${units}u + ${j}u`;
    L.push(`let cu${j} = (${unit}) * ${vw}u;`);
  }
  L.push(`let sam = mu(${g.a + 2}u); let sak = mu(${g.a + 3}u); let sbk = mu(${g.b + 2}u); let sbn = mu(${g.b + 3}u);`);
  L.push(`let aBase = mu(${g.a}u) + bt * mu(${g.a + 1}u); let bBase = mu(${g.b}u) + bt * mu(${g.b + 1}u);`);
  // Row bases of A (clamped to M - 1: edge threads compute garbage they never store).
  const S = c.shareA;
  const aRows = S ? tm / S : tm;
  for (const i of range(aRows)) {
    const row = `aBase + min(m0 + ${S ? `${i * S}u + sid` : `${i}u`}, M - 1u) * sam`;
    L.push(c.a === 'k4' ? `let ar${i} = (${row}) / 4u;` : `let ar${i} = ${row};`);
  }
  // Column bases of B (clamped to the last column unit).
  if (c.b === 'n4') {
    L.push(`let sk4 = sbk / 4u; let bc = bBase / 4u; let bn = mu(${g.bn}u);`);
    for (const j of range(units)) L.push(`let bc${j} = bc + min(cu${j}, bn - 4u) / 4u;`);
  } else if (c.b === 'k4') {
    for (const j of range(tn)) L.push(`let bc${j} = (bBase + min(cu${j}, N - 1u) * sbn) / 4u;`);
  } else {
    for (const j of range(tn)) L.push(`let bc${j} = bBase + min(cu${j}, N - 1u) * sbn;`);
  }
  for (const i of range(tm)) for (const j of range(units)) L.push(`var acc${i}_${j} = ${vw === 4 ? 'vec4<f32>(0.0)' : '0.0'};`);
  const steps = k4 ? 4 : 1;
  L.push(`for (var k = 0u; k < K; k += ${steps}u) {`);
  // A values: a{i} (vec4 over k when k4, else scalars a{i}_{r}).
  if (S) {
    // One load per lane per row group, then every lane gets each row by broadcast.
    if (c.a === 'k4') {
      for (const g2 of range(aRows)) L.push(`  let al${g2} = ${io.ld4('A', `ar${g2} + k / 4u`)};`);
      for (const i of range(tm)) L.push(`  let a${i} = subgroupBroadcast(al${Math.floor(i / S)}, ${i % S}u);`);
    } else {
      for (const r of range(steps)) {
        for (const g2 of range(aRows)) L.push(`  let al${g2}_${r} = ${io.ld('A', `ar${g2} + (k + ${r}u) * sak`)};`);
        for (const i of range(tm)) L.push(`  let a${i}_${r} = subgroupBroadcast(al${Math.floor(i / S)}_${r}, ${i % S}u);`);
      }
    }
  } else if (c.a === 'k4') for (const i of range(tm)) L.push(`  let a${i} = ${io.ld4('A', `ar${i} + k / 4u`)};`);
  else for (const r of range(steps)) for (const i of range(tm)) L.push(`  let a${i}_${r} = ${io.ld('A', `ar${i} + (k + ${r}u) * sak`)};`);
  const av = (i: number, r: number) => (c.a === 'k4' ? `a${i}.${comp[r]}` : `a${i}_${r}`);
  if (c.b === 'n4') {
    for (const r of range(steps)) for (const j of range(units)) L.push(`  let b${r}_${j} = ${io.ld4('Bm', `bc${j} + (k + ${r}u) * sk4`)};`);
    for (const i of range(tm)) {
      for (const j of range(units)) {
        // An explicit fma chain: 4 ops per k4 step instead of mul + 3 fma + add (measured ~10% faster on lavapipe).
        for (const r of range(steps)) L.push(`  acc${i}_${j} = fma(vec4<f32>(${av(i, r)}), b${r}_${j}, acc${i}_${j});`);
      }
    }
  } else if (c.b === 'k4') {
    for (const j of range(tn)) L.push(`  let b${j} = ${io.ld4('Bm', `bc${j} + k / 4u`)};`);
    for (const i of range(tm)) {
      for (const j of range(tn)) {
        L.push(c.a === 'k4'
          ? `  acc${i}_${j} += dot(a${i}, b${j});`
          : `  acc${i}_${j} += ${range(4).map((r) => `${av(i, r)} * b${j}.${comp[r]}`).join(' + ')};`);
      }
    }
  } else {
    for (const r of range(steps)) for (const j of range(tn)) L.push(`  let b${r}_${j} = ${io.ld('Bm', `bc${j} + (k + ${r}u) * sbk`)};`);
    for (const i of range(tm)) {
      for (const j of range(tn)) L.push(`  acc${i}_${j} += ${range(steps).map((r) => `${av(i, r)} * b${r}_${j}`).join(' + ')};`);
    }
  }
  L.push('}');
  L.push(storeLoop(tm, units, vw));
  return `@compute @workgroup_size(${wx}, ${wy})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>${c.shareA ? ', @builtin(subgroup_invocation_id) sid: u32' : ''}) {
  ${L.join('\n  ')}
}`;
}

function tiledBody(io: HalfIO): string {
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
      As[kk * T + mm] = select(0.0, ${io.ld('A', 'aB + min(am, M - 1u) * sam + min(ak, K - 1u) * sak')}, am < M && ak < K);
      let kb = e / T; let nn = e % T;
      let bn = nT + nn; let bk = k0 + kb;
      Bs[kb * T + nn] = select(0.0, ${io.ld('Bm', 'bB + min(bk, K - 1u) * sbk + min(bn, N - 1u) * sbn')}, bn < N && bk < K);
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
  if (c.int8) return gemmInt8Wgsl(c, c.int8);
  const io = new HalfIO(c.half);
  return `${c.strategy === 'register' && c.shareA ? 'enable subgroups;' : ''}
${metaDecl(GM.words)}
${PRELUDE}
${decls(c, io)}
${epilogue(io)}
${c.strategy === 'register' ? registerBody(c, io) : tiledBody(io)}
`;
}
