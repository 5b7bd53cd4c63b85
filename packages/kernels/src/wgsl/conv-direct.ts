/**
 * Direct implicit-GEMM conv forward that reads input pixels as vec4: no
 * im2col buffer, for the convs Winograd and the 1x1 GEMM do not take (the
 * 7x7 stride-2 stem, stride-2 3x3, strided 1x1). Ungrouped, undilated, and
 * the input's rows must be vec4-aligned (W % 4 == 0, dense rows, every
 * offset and stride a multiple of 4); ops/conv.ts checks that.
 *
 * One thread computes TM output channels x TN consecutive output pixels of
 * one output row (TN a multiple of 4, the row's tiles start at multiples of
 * TN). Per (c, kh) the TN pixels' windows cover one input row segment of
 * L = (TN-1)*SW + KW values; it starts at the same phase in a vec4 for every
 * thread (iw0 = TN*t*SW - PW, so phase = (-PW) mod 4), so the thread loads
 * ceil((phase + L) / 4) aligned vec4s and picks each tap's value by a
 * component index known when the shader is generated (KW, SW and the
 * phase are compile-time; every other size is a meta uniform). A vec4 lies
 * wholly inside or outside the row (W % 4 == 0), so padding costs one test
 * per vec4, not per tap. Per (c, kh, kw) the thread reads TM weights: with
 * subgroups (shareW = S) lane s loads those of channels oc0 + g*S + s and
 * subgroupBroadcast hands them to every lane, as the scalar direct kernel
 * (wgsl/conv.ts) does. For the stem that is 4 vec4 loads per (c, kh) where
 * the scalar kernel does 28 scalar ones (CPU drivers pay per lane per load).
 * Epilogue (bias, residual, ReLU) by meta flags, as wgsl/conv.ts's forward
 * (float32 only: float16 convs keep that kernel).
 * Workgroup: S x 1 threads (shareW) with workgroup_id.x over channel blocks,
 * else 16 x 4 (pixels x channel blocks).
 */
import { metaDecl, PRELUDE } from './common.js';
import { CM } from './conv.js';

/** One compiled variant of the vec4 direct conv. */
export interface ConvDirectConfig {
  /** Output channels per thread (a multiple of shareW when shareW > 0). */
  tm: number;
  /** Consecutive output pixels of one row per thread (multiple of 4). */
  tn: number;
  /** Subgroup size when weights are shared by broadcast (0: each thread loads its own). */
  shareW: number;
  /** Kernel width and horizontal stride (compile-time: they fix the vec4 component of each tap). */
  kw: number;
  sw: number;
  /** (-padding[1]) mod 4: where the first tap of a tile sits in its vec4. */
  phase: number;
}

/** Threads per workgroup (pixel tiles, channel blocks) without subgroups. */
export const DIRECT4_PLAIN_WG: [number, number] = [16, 4];

/** Pipeline-cache key of a config. */
export function convDirectKey(c: ConvDirectConfig): string {
  return `conv-direct4:${c.tm}x${c.tn}:sg${c.shareW}:k${c.kw}:s${c.sw}:ph${c.phase}`;
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const m = (k: keyof typeof CM) => `mu(${CM[k]}u)`;
const mI = (k: keyof typeof CM) => `mi(${CM[k]}u)`;
/** offset of element (n, c, h, w) of the view whose meta starts at `at` */
const at4 = (at: number, n: string, c: string, h: string, w: string) =>
  `(mu(${at}u) + ${n} * mu(${at + 1}u) + ${c} * mu(${at + 2}u) + ${h} * mu(${at + 3}u) + ${w} * mu(${at + 4}u))`;

/** The epilogue: bias[oc], residual, ReLU by meta[CM.epi] flags (CONV_EPI), then the store. */
const STORE = `fn store(n: u32, oc: u32, oh: u32, ow: u32, acc: f32) {
  let epi = mu(${CM.epi}u);
  var v = acc;
  if ((epi & 1u) != 0u) { v += bias[mu(${CM.bias}u) + oc * mu(${CM.bias + 1}u)]; }
  if ((epi & 2u) != 0u) { v += res[${at4(CM.res, 'n', 'oc', 'oh', 'ow')}]; }
  if ((epi & 4u) != 0u) { v = select(v, 0.0, v < 0.0); }
  out[${at4(CM.y, 'n', 'oc', 'oh', 'ow')}] = v;
}`;

/** vec4s a tile's row segment spans. */
export function direct4Vectors(c: ConvDirectConfig): number {
  return Math.ceil((c.phase + (c.tn - 1) * c.sw + c.kw) / 4);
}

export function convDirectWgsl(c: ConvDirectConfig): string {
  const { tm, tn, kw: KW, sw: SW, phase } = c;
  const S = c.shareW;
  const [wx, wy] = S ? [S, 1] : DIRECT4_PLAIN_WG;
  const V = direct4Vectors(c);
  const L: string[] = [];
  L.push(`let O = ${m('O')}; let OH = ${m('OH')}; let OW = ${m('OW')}; let tilesW = (OW + ${tn - 1}u) / ${tn}u; let T = ${m('N')} * OH * tilesW;`);
  L.push(S
    ? `let t0 = wid.y * ${wx}u + lid.x; let oc0 = wid.x * ${tm}u;`
    : `let t0 = wid.x * ${wx}u + lid.x; let oc0 = (wid.y * ${wy}u + lid.y) * ${tm}u;`);
  L.push(`let t = min(t0, T - 1u); let n = t / (OH * tilesW); let oh = (t / tilesW) % OH; let ow0 = (t % tilesW) * ${tn}u;`);
  L.push(`let H = ${mI('H')}; let W4 = ${mI('W')} / 4; let KH = ${m('KH')}; let C = ${m('C')};`);
  L.push(`let ih0 = i32(oh * ${m('SH')}) - ${mI('PH')};`);
  // iw0 - phase = 4 * (ow0 * SW / 4) - (PW + phase), both terms multiples of 4.
  L.push(`let vb = i32(ow0 * ${SW}u / 4u) - (${mI('PW')} + ${phase}) / 4;`);
  L.push(`let xsc = mu(${CM.x + 2}u) / 4u; let xsh = mu(${CM.x + 3}u) / 4u;`);
  L.push(`let xb = (mu(${CM.x}u) + n * mu(${CM.x + 1}u)) / 4u;`);
  L.push(`let wsc = mu(${CM.w + 2}u); let wsh = mu(${CM.w + 3}u); let wsw = mu(${CM.w + 4}u);`);
  const wRows = S ? tm / S : tm;
  for (const i of range(wRows)) L.push(`let wb${i} = mu(${CM.w}u) + min(oc0 + ${S ? `${i * S}u + sid` : `${i}u`}, O - 1u) * mu(${CM.w + 1}u);`);
  for (const i of range(tm)) for (const j of range(tn)) L.push(`var acc${i}_${j} = 0.0;`);
  L.push('for (var ci = 0u; ci < C; ci++) {');
  L.push('  for (var kh = 0u; kh < KH; kh++) {');
  L.push('    let y = ih0 + i32(kh); let rowOk = y >= 0 && y < H;');
  L.push('    let row = xb + ci * xsc + u32(max(y, 0)) * xsh;');
  for (const v of range(V)) {
    L.push(`    let q${v} = vb + ${v}; let ok${v} = rowOk && q${v} >= 0 && q${v} < W4;`);
    L.push(`    let s${v} = select(vec4<f32>(0.0), x[select(0u, row + u32(q${v}), ok${v})], ok${v});`);
  }
  L.push('    let wk = ci * wsc + kh * wsh;');
  for (const k of range(KW)) {
    if (S) {
      for (const g of range(wRows)) L.push(`    let wl${g}_${k} = w[wb${g} + wk + ${k}u * wsw];`);
      for (const i of range(tm)) L.push(`    let wv${i}_${k} = subgroupBroadcast(wl${Math.floor(i / S)}_${k}, ${i % S}u);`);
    } else {
      for (const i of range(tm)) L.push(`    let wv${i}_${k} = w[wb${i} + wk + ${k}u * wsw];`);
    }
    for (const j of range(tn)) {
      const pos = phase + j * SW + k;
      for (const i of range(tm)) L.push(`    acc${i}_${j} += wv${i}_${k} * s${pos >> 2}.${'xyzw'[pos & 3]};`);
    }
  }
  L.push('  }');
  L.push('}');
  // One rolled store loop (see gemm.ts storeLoop): short cold compiles.
  L.push(`var ov: array<f32, ${tm * tn}>;`);
  for (const i of range(tm)) for (const j of range(tn)) L.push(`ov[${i * tn + j}] = acc${i}_${j};`);
  L.push(`if (t0 < T) { for (var i = 0u; i < ${tm}u; i++) { for (var j = 0u; j < ${tn}u; j++) {
    if (oc0 + i < O && ow0 + j < OW) { store(n, oc0 + i, oh, ow0 + j, ov[i * ${tn}u + j]); }
  } } }`);
  return `${S ? 'enable subgroups;' : ''}
${metaDecl(CM.words)}
${PRELUDE}
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> w: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read> res: array<f32>;
${STORE}
@compute @workgroup_size(${wx}, ${wy})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>${S ? ', @builtin(subgroup_invocation_id) sid: u32' : ''}) {
  ${L.join('\n  ')}
}
`;
}
