/**
 * Winograd F(m x m, 3 x 3) convolution (stride 1, dilation 1, one group),
 * m = 2 (4 x 4 tiles, 2.25x fewer multiplies than direct) or m = 4 (6 x 6
 * tiles, 4x fewer), as three transform kernels around one batched GEMM
 * (ops/winograd.ts runs the GEMM with wgsl/gemm.ts):
 *
 *   U[xi][r][k] = (G g[r][k] G^T)[xi]        filter: one thread per (r, k)
 *   V[xi][k][p] = (B^T d[k][p] B)[xi]        input: one thread per (tile p, channel k)
 *   M[xi]       = U[xi] @ V[xi]              alpha^2 GEMMs [R, K] x [K, P]
 *   y[p] tile   = epilogue(A^T M[.][r][p] A) output: one thread per (tile p, row r)
 *
 * alpha = m + 2. A thread of the input transform reads its alpha x alpha
 * patch (zeros in the padding) and writes alpha^2 values; the output
 * transform reads alpha^2 values and writes its m x m tile through the
 * epilogue (bias[r], residual, ReLU as meta flags: one pipeline for every
 * epilogue). No shared memory and no barriers; the transforms are unrolled
 * with the matrices' zero entries skipped. `flip` makes the filter kernel
 * read g[r][k] = w[k][r][2 - kh][2 - kw]: the weights of the input-gradient
 * conv (dx = conv(dy, flipped w^T, padding 2 - p)). Rows of V and M are
 * padded to Pp = P rounded up to 4 so the GEMM reads V as vec4.
 */
import { bufferDecl, metaDecl, PRELUDE } from './common.js';
import { HalfIO } from './half.js';

/** One kernel of the family. */
export interface WinogradConfig {
  kind: 'filter' | 'input' | 'output';
  /** Output tile size: F(2x2, 3x3) or F(4x4, 3x3). */
  m: 2 | 4;
  /** filter: read the input-gradient conv's weights (transposed channels, flipped taps). */
  flip?: boolean;
  /**
   * Operands stored as float16 words (wgsl/half.ts HalfIO), by WGSL name:
   * filter: wt; input: x; output: out, bias, res. The transformed U, V and
   * Mx stay f32, so the GEMMs between the transforms are float32 ones
   * (f32 accumulation, as PyTorch's half convs) and a float16 output is
   * rounded once, after the epilogue.
   */
  half?: readonly string[];
}

/**
 * Meta layout: conv geometry as the transforms see it (K input channels of
 * H x W, R output channels of OH x OW, padding, tiles TH x TW, P = N*TH*TW,
 * Pp), then (offset, 4 strides) of the input x, the output y, the weights w
 * (as [R, K, 3, 3] unless flipped: then as stored, [K, R, 3, 3]), bias
 * (offset, stride), residual; epilogue flags (bit 0 bias, 1 residual, 2 ReLU).
 */
export const WM = {
  N: 0, K: 1, H: 2, W: 3, R: 4, OH: 5, OW: 6, PH: 7, PW: 8, TH: 9, TW: 10, P: 11, Pp: 12,
  x: 13, y: 18, w: 23, bias: 28, res: 30, epi: 35, words: 36,
};

/** Workgroup size of the transform kernels (1-D over tiles or weights). */
export const WINO_WG = 64;

/** Pipeline-cache key of a config. */
export function winogradKey(c: WinogradConfig): string {
  return `winograd:${c.kind}:f${c.m}${c.flip ? ':flip' : ''}${new HalfIO(c.half).key()}`;
}

type Mat = number[][];

/**
 * B^T, G, A^T of F(2, 3) (points 0, +-1, infinity) and F(4, 3). For F(4, 3)
 * the points are 0, -1, 1, 1/2, -2, infinity (Barabasz et al., "Error
 * analysis and improving the accuracy of Winograd convolution", 2020), not
 * Lavin & Gray's 0, +-1, +-2: in float32 over K = 64..512 channels their
 * worst error is 2.7x smaller (winograd-error.test.ts: 0.21 -> 0.076 of a
 * flat 1e-4 conv tolerance), which is what keeps a whole ResNet18 fine-tuning step
 * within its gradient tolerance (tests/resnet.parity.test.ts failed with the
 * standard points). Derived with the Toom-Cook construction (A^T from the
 * points' powers, G = point powers / prod(p_j - p_l), B^T solved so that
 * A^T ((G g) * (B^T d)) is the 3-tap correlation), checked exactly.
 */
const MATS: Record<2 | 4, { BT: Mat; G: Mat; AT: Mat }> = {
  2: {
    BT: [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
    G: [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]],
    AT: [[1, 1, 1, 0], [0, 1, -1, -1]],
  },
  4: {
    BT: [
      [1, -3 / 2, -2, 3 / 2, 1, 0], [0, 1, -5 / 2, 1 / 2, 1, 0], [0, -1, 1 / 2, 5 / 2, 1, 0],
      [0, -2, -1, 2, 1, 0], [0, 1 / 2, -1, -1 / 2, 1, 0], [0, 1, -3 / 2, -2, 3 / 2, 1],
    ],
    G: [
      [1, 0, 0], [-1 / 3, 1 / 3, -1 / 3], [1 / 3, 1 / 3, 1 / 3],
      [-16 / 15, -8 / 15, -4 / 15], [1 / 15, -2 / 15, 4 / 15], [0, 0, 1],
    ],
    AT: [[1, 1, 1, 1, 1, 0], [0, -1, 1, 1 / 2, -2, 0], [0, 1, 1, 1 / 4, 4, 0], [0, -1, 1, 1 / 8, -8, 1]],
  },
};

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** sum_j c[j] * terms[j], skipping zeros; +-1 as adds. */
function lin(c: number[], terms: string[]): string {
  const parts: string[] = [];
  c.forEach((v, j) => {
    if (v === 0) return;
    const mag = Math.abs(v) === 1 ? terms[j] : `${lit(Math.abs(v))} * ${terms[j]}`;
    parts.push(parts.length === 0 ? (v < 0 ? `-${mag}` : mag) : `${v < 0 ? '-' : '+'} ${mag}`);
  });
  return parts.length ? parts.join(' ') : '0.0';
}

function lit(v: number): string {
  const s = Number.isInteger(v) ? `${v}.0` : v.toPrecision(9);
  return s;
}

/**
 * Lines computing out_i_j = (L D L^T)[i][j] from D's entries named
 * `${src}${a}_${b}` (rows x cols), through temporaries t_i_b.
 */
function sandwich(L: Mat, src: string, rows: number, cols: number, out: string, pre: string): string[] {
  const lines: string[] = [];
  for (const i of range(L.length)) {
    for (const b of range(cols)) lines.push(`let ${pre}${i}_${b} = ${lin(L[i]!, range(rows).map((a) => `${src}${a}_${b}`))};`);
  }
  for (const i of range(L.length)) {
    for (const j of range(L.length)) lines.push(`let ${out}${i}_${j} = ${lin(L[j]!, range(cols).map((b) => `${pre}${i}_${b}`))};`);
  }
  return lines;
}

const m = (k: keyof typeof WM) => `mu(${WM[k]}u)`;
const mI = (k: keyof typeof WM) => `mi(${WM[k]}u)`;

function filter(c: WinogradConfig, io: HalfIO): string {
  const { G } = MATS[c.m];
  const a = G.length;
  const L: string[] = [];
  L.push(`let K = ${m('K')}; let R = ${m('R')}; let k = gid.x; let r = gid.y;`);
  L.push(`if (k >= K) { return; }`);
  // Flipped: the stored tensor is [K, R, 3, 3]; tap (kh, kw) of the gradient conv is stored tap (2 - kh, 2 - kw).
  L.push(c.flip
    ? `let base = mu(${WM.w}u) + k * mu(${WM.w + 1}u) + r * mu(${WM.w + 2}u);`
    : `let base = mu(${WM.w}u) + r * mu(${WM.w + 1}u) + k * mu(${WM.w + 2}u);`);
  L.push(`let sh = mu(${WM.w + 3}u); let sw = mu(${WM.w + 4}u);`);
  for (const i of range(3)) {
    for (const j of range(3)) {
      const [h, w] = c.flip ? [2 - i, 2 - j] : [i, j];
      L.push(`let g${i}_${j} = ${io.ld('wt', `base + ${h}u * sh + ${w}u * sw`)};`);
    }
  }
  L.push(...sandwich(G, 'g', 3, 3, 'u', 't'));
  for (const i of range(a)) for (const j of range(a)) L.push(`U[(${i * a + j}u * R + r) * K + k] = u${i}_${j};`);
  return `${bufferDecl(1, 'U', 'f32', true)}
${io.decl(2, 'wt')}
${io.helpers()}
@compute @workgroup_size(${WINO_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${L.join('\n  ')}
}`;
}

/** Tile p's (n, th, tw). */
const TILE = `let TW = ${m('TW')}; let TT = ${m('TH')} * TW;
  let n = p / TT; let t = p - n * TT; let th = t / TW; let tw = t - th * TW;`;

function input(c: WinogradConfig, io: HalfIO): string {
  const { BT } = MATS[c.m];
  const a = BT.length;
  const L: string[] = [];
  L.push(`let P = ${m('P')}; let p = gid.x; let k = gid.y;`);
  L.push('if (p >= P) { return; }');
  L.push(TILE);
  L.push(`let H = ${mI('H')}; let W = ${mI('W')};`);
  L.push(`let h0 = i32(th * ${c.m}u) - ${mI('PH')}; let w0 = i32(tw * ${c.m}u) - ${mI('PW')};`);
  L.push(`let base = mu(${WM.x}u) + n * mu(${WM.x + 1}u) + k * mu(${WM.x + 2}u); let sh = mu(${WM.x + 3}u); let sw = mu(${WM.x + 4}u);`);
  for (const i of range(a)) {
    L.push(`let y${i} = h0 + ${i}; let rok${i} = y${i} >= 0 && y${i} < H; let row${i} = base + u32(max(y${i}, 0)) * sh;`);
  }
  for (const j of range(a)) L.push(`let x${j} = w0 + ${j}; let cok${j} = x${j} >= 0 && x${j} < W; let col${j} = u32(max(x${j}, 0)) * sw;`);
  for (const i of range(a)) {
    for (const j of range(a)) {
      L.push(`let d${i}_${j} = select(0.0, ${io.ld('x', `select(0u, row${i} + col${j}, rok${i} && cok${j})`)}, rok${i} && cok${j});`);
    }
  }
  L.push(...sandwich(BT, 'd', a, a, 'v', 't'));
  L.push(`let K = ${m('K')}; let Pp = ${m('Pp')};`);
  for (const i of range(a)) for (const j of range(a)) L.push(`V[(${i * a + j}u * K + k) * Pp + p] = v${i}_${j};`);
  return `${bufferDecl(1, 'V', 'f32', true)}
${io.decl(2, 'x')}
${io.helpers()}
@compute @workgroup_size(${WINO_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${L.join('\n  ')}
}`;
}

const at4 = (at: number, n: string, c: string, h: string, w: string) =>
  `(mu(${at}u) + ${n} * mu(${at + 1}u) + ${c} * mu(${at + 2}u) + ${h} * mu(${at + 3}u) + ${w} * mu(${at + 4}u))`;

function output(c: WinogradConfig, io: HalfIO): string {
  const { AT } = MATS[c.m];
  const a = AT[0]!.length;
  const mm = c.m;
  const L: string[] = [];
  L.push(`let P = ${m('P')}; let p = gid.x; let r = gid.y;`);
  L.push('if (p >= P) { return; }');
  L.push(TILE);
  L.push(`let R = ${m('R')}; let Pp = ${m('Pp')};`);
  for (const i of range(a)) for (const j of range(a)) L.push(`let s${i}_${j} = Mx[(${i * a + j}u * R + r) * Pp + p];`);
  L.push(...sandwich(AT, 's', a, a, 'o', 't'));
  // One rolled store loop (see gemm.ts storeLoop): one inlined epilogue, short cold compiles.
  L.push(`var ov: array<f32, ${mm * mm}>;`);
  for (const i of range(mm)) for (const j of range(mm)) L.push(`ov[${i * mm + j}] = o${i}_${j};`);
  L.push(`let oh0 = th * ${mm}u; let ow0 = tw * ${mm}u; let OH = ${m('OH')}; let OW = ${m('OW')};`);
  L.push(`for (var i = 0u; i < ${mm}u; i++) { for (var j = 0u; j < ${mm}u; j++) {
    if (oh0 + i < OH && ow0 + j < OW) { store(n, r, oh0 + i, ow0 + j, ov[i * ${mm}u + j]); }
  } }`);
  return `${io.decl(1, 'out', { write: true })}
${bufferDecl(2, 'Mx', 'f32')}
${io.decl(3, 'bias')}
${io.decl(4, 'res')}
${io.helpers()}
fn store(n: u32, oc: u32, oh: u32, ow: u32, acc: f32) {
  let epi = mu(${WM.epi}u);
  var v = acc;
  if ((epi & 1u) != 0u) { v += ${io.ld('bias', `mu(${WM.bias}u) + oc * mu(${WM.bias + 1}u)`)}; }
  if ((epi & 2u) != 0u) { v += ${io.ld('res', at4(WM.res, 'n', 'oc', 'oh', 'ow'))}; }
  if ((epi & 4u) != 0u) { v = select(v, 0.0, v < 0.0); }
  ${io.st('out', at4(WM.y, 'n', 'oc', 'oh', 'ow'), 'v')}
}
@compute @workgroup_size(${WINO_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${L.join('\n  ')}
}`;
}

/** WGSL of one kernel of the family. */
export function winogradWgsl(c: WinogradConfig): string {
  const io = new HalfIO(c.half);
  const body = c.kind === 'filter' ? filter(c, io) : c.kind === 'input' ? input(c, io) : output(c, io);
  return `${metaDecl(WM.words)}
${PRELUDE}
${body}
`;
}

/** alpha^2, the number of transformed-domain GEMMs of F(m x m, 3 x 3). */
export function winogradPoints(m: 2 | 4): number {
  return (m + 2) * (m + 2);
}
