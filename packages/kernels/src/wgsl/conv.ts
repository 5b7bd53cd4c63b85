/**
 * 2-D convolution (NCHW, groups, stride, padding, dilation): the direct
 * kernels are implicit GEMMs (no im2col buffer); `im2col` materialises one
 * for the GEMM route of ops/conv.ts. Epilogue (bias[oc], residual, ReLU) is
 * chosen by meta flags at run time: one pipeline for every epilogue.
 *
 * forward: one thread computes a TM x TN block (TM output channels of one
 * group x TN output pixels, pixels flattened over N*OH*OW). Per (c, kh, kw)
 * it reads TM weights and TN input values (zero outside the padded image)
 * and does TM*TN FMAs. No shared memory (barrier-free suits CPU adapters,
 * and inputs are re-read from cache on GPUs). Plain: 16 x 4 threads, each
 * loads its own weights. Subgroup-shared (shareW = S, one group only): one
 * subgroup per workgroup, TM = 2S channels; lane s loads the weights of
 * channels oc0 + g*S + s once and subgroupBroadcast hands them to all
 * lanes (CPU drivers pay per lane for every load whose address varies).
 * backwardInput / backwardWeight, subgroup-shared (one group): GEMMs with
 * the lane-invariant operand (w for dX, dy for dW) broadcast the same way,
 * TM = 2S rows x TN columns per lane (see their functions below).
 * Otherwise one thread per dx element sums dy * w over the output
 * positions whose window covers it (stride divisibility tested per tap),
 * and one thread per dw element sums dy * x over N and the output
 * positions whose tap lands inside the image (ranges precomputed).
 * float16 (`half`, every kind): the named operands are packed float16
 * words (wgsl/half.ts HalfIO): loads unpack to f32, every accumulator and
 * the epilogue are f32 (PyTorch accumulates half convs in f32), each output
 * element is rounded once to float16 (nearest even) when stored; im2col
 * reads float16 x and writes a float16 panel (4 elements = 2 whole words).
 */
import { metaDecl, PRELUDE, entry1d } from './common.js';
import { HalfIO } from './half.js';

export interface ConvConfig {
  kind: 'forward' | 'backwardInput' | 'backwardWeight' | 'im2col';
  /** forward: output channels x output pixels per thread. */
  tm: number;
  tn: number;
  /** forward: threads per workgroup along pixels and channels. */
  wg: [number, number];
  /**
   * forward: subgroup size S when weights are shared through the subgroup
   * (0: off). Then WY = 1, TM % S == 0 and workgroup_id.x walks channel
   * blocks; lane s loads the weights of channels oc0 + g*S + s and
   * subgroupBroadcast hands them to every lane.
   */
  shareW: number;
  /** Operands stored as float16 words, by WGSL name (forward: out, x, w, bias, res; backwardInput: dx, dy, w; backwardWeight: dw, x, dy; im2col: col, x). */
  half?: readonly string[];
  /** im2col: one row per tap over the whole batch's pixels, col[k][n*OH*OW + p] (rows padded to 4), instead of one panel per image. */
  batchCols?: boolean;
}

/** Meta layout: geometry, then (offset, 4 strides) of x, w, y (out or dy), bias, residual; epilogue flags; images per workgroup column range (shared backwardInput). */
export const CM = {
  N: 0, C: 1, H: 2, W: 3, O: 4, OH: 5, OW: 6, KH: 7, KW: 8, SH: 9, SW: 10, PH: 11, PW: 12, DH: 13, DW: 14,
  G: 15, CG: 16, OG: 17, x: 18, w: 23, y: 28, bias: 33, res: 35, total: 40, epi: 41, NB: 42, words: 43,
};
/** Epilogue flag bits of meta[CM.epi]. */
export const CONV_EPI = { bias: 1, residual: 2, relu: 4 };

export function convKey(c: ConvConfig): string {
  return `conv:${c.kind}:${c.tm}x${c.tn}:w${c.wg.join('x')}:sg${c.shareW}${c.batchCols ? ':bc' : ''}${new HalfIO(c.half).key()}`;
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const m = (k: keyof typeof CM) => `mu(${CM[k]}u)`;
const mI = (k: keyof typeof CM) => `mi(${CM[k]}u)`;
/** offset of element (n, c, h, w) of the view whose meta starts at `at` */
const at4 = (at: number, n: string, c: string, h: string, w: string) =>
  `(mu(${at}u) + ${n} * mu(${at + 1}u) + ${c} * mu(${at + 2}u) + ${h} * mu(${at + 3}u) + ${w} * mu(${at + 4}u))`;

function forward(c: ConvConfig, io: HalfIO): string {
  const { tm, tn } = c;
  const [wx, wy] = c.wg;
  const S = c.shareW;
  const L: string[] = [];
  L.push(`let O = ${m('O')}; let OHW = ${m('OH')} * ${m('OW')}; let P = ${m('N')} * OHW;`);
  L.push(S
    ? `let p0 = (wid.y * ${wx}u + lid.x) * ${tn}u; let oc0 = wid.x * ${tm}u;`
    : `let p0 = (wid.x * ${wx}u + lid.x) * ${tn}u; let oc0 = (wid.y * ${wy}u + lid.y) * ${tm}u;`);
  L.push(`let H = ${mI('H')}; let W = ${mI('W')}; let KH = ${m('KH')}; let KW = ${m('KW')};`);
  L.push(`let cBase = (min(oc0, O - 1u) / ${m('OG')}) * ${m('CG')}; let CG = ${m('CG')};`);
  L.push(`let xsc = mu(${CM.x + 2}u); let xsh = mu(${CM.x + 3}u); let xsw = mu(${CM.x + 4}u);`);
  L.push(`let wsc = mu(${CM.w + 2}u); let wsh = mu(${CM.w + 3}u); let wsw = mu(${CM.w + 4}u);`);
  L.push(`let dh = ${mI('DH')}; let dw = ${mI('DW')};`);
  for (const j of range(tn)) {
    L.push(`let px${j} = min(p0 + ${j}u, P - 1u); let n${j} = px${j} / OHW; let oh${j} = (px${j} % OHW) / ${m('OW')}; let ow${j} = px${j} % ${m('OW')};`);
    L.push(`let ih${j} = i32(oh${j} * ${m('SH')}) - ${mI('PH')}; let iw${j} = i32(ow${j} * ${m('SW')}) - ${mI('PW')};`);
    L.push(`let xb${j} = mu(${CM.x}u) + n${j} * mu(${CM.x + 1}u) + cBase * xsc;`);
  }
  const wRows = S ? tm / S : tm;
  for (const i of range(wRows)) L.push(`let wb${i} = mu(${CM.w}u) + min(oc0 + ${S ? `${i * S}u + sid` : `${i}u`}, O - 1u) * mu(${CM.w + 1}u);`);
  for (const i of range(tm)) for (const j of range(tn)) L.push(`var acc${i}_${j} = 0.0;`);
  L.push('for (var ci = 0u; ci < CG; ci++) {');
  L.push('  for (var kh = 0u; kh < KH; kh++) {');
  for (const j of range(tn)) {
    L.push(`    let y${j} = ih${j} + i32(kh) * dh; let rowOk${j} = y${j} >= 0 && y${j} < H;`);
    L.push(`    let row${j} = xb${j} + ci * xsc + u32(max(y${j}, 0)) * xsh;`);
  }
  L.push('    let wk = ci * wsc + kh * wsh;');
  L.push('    for (var kw = 0u; kw < KW; kw++) {');
  if (S) {
    for (const g of range(wRows)) L.push(`      let wl${g} = ${io.ld('w', `wb${g} + wk + kw * wsw`)};`);
    for (const i of range(tm)) L.push(`      let wv${i} = subgroupBroadcast(wl${Math.floor(i / S)}, ${i % S}u);`);
  } else {
    for (const i of range(tm)) L.push(`      let wv${i} = ${io.ld('w', `wb${i} + wk + kw * wsw`)};`);
  }
  for (const j of range(tn)) {
    L.push(`      let x${j} = iw${j} + i32(kw) * dw; let ok${j} = rowOk${j} && x${j} >= 0 && x${j} < W;`);
    L.push(`      let xv${j} = select(0.0, ${io.ld('x', `select(0u, row${j} + u32(x${j}) * xsw, ok${j})`)}, ok${j});`);
  }
  for (const i of range(tm)) for (const j of range(tn)) L.push(`      acc${i}_${j} += wv${i} * xv${j};`);
  L.push('    }');
  L.push('  }');
  L.push('}');
  // One rolled store loop (see gemm.ts storeLoop): short cold compiles.
  L.push(`var ov: array<f32, ${tm * tn}>;`);
  for (const i of range(tm)) for (const j of range(tn)) L.push(`ov[${i * tn + j}] = acc${i}_${j};`);
  L.push(`var pn: array<vec3<u32>, ${tn}>;`);
  for (const j of range(tn)) L.push(`pn[${j}] = vec3<u32>(n${j}, oh${j}, ow${j});`);
  L.push(`for (var i = 0u; i < ${tm}u; i++) { for (var j = 0u; j < ${tn}u; j++) {
    if (oc0 + i < O && p0 + j < P) { let q = pn[j]; store(q.x, oc0 + i, q.y, q.z, ov[i * ${tn}u + j]); }
  } }`);
  const bindings = [io.decl(1, 'out', { write: true }), io.decl(2, 'x'), io.decl(3, 'w'), io.decl(4, 'bias'), io.decl(5, 'res'), io.helpers()];
  return `${bindings.join('\n')}
fn store(n: u32, oc: u32, oh: u32, ow: u32, acc: f32) {
  let epi = mu(${CM.epi}u);
  var v = acc;
  if ((epi & 1u) != 0u) { v += ${io.ld('bias', `mu(${CM.bias}u) + oc * mu(${CM.bias + 1}u)`)}; }
  if ((epi & 2u) != 0u) { v += ${io.ld('res', at4(CM.res, 'n', 'oc', 'oh', 'ow'))}; }
  if ((epi & 4u) != 0u) { v = select(v, 0.0, v < 0.0); }
  ${io.st('out', at4(CM.y, 'n', 'oc', 'oh', 'ow'), 'v')}
}
@compute @workgroup_size(${wx}, ${wy})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>${S ? ', @builtin(subgroup_invocation_id) sid: u32' : ''}) {
  ${L.join('\n  ')}
}`;
}

function backwardInput(io: HalfIO): string {
  return `${io.decl(1, 'dx', { write: true })}
${io.decl(2, 'dy')}
${io.decl(3, 'w')}
${io.helpers()}
${entry1d()}
  if (gi >= ${m('total')}) { return; }
  let H = ${m('H')}; let W = ${m('W')}; let C = ${m('C')};
  let iw = gi % W; let ih = (gi / W) % H; let c = (gi / (W * H)) % C; let n = gi / (W * H * C);
  let g = c / ${m('CG')}; let cl = c % ${m('CG')};
  let sh = ${mI('SH')}; let sw = ${mI('SW')}; let OH = ${mI('OH')}; let OW = ${mI('OW')};
  var acc = 0.0;
  for (var kh = 0u; kh < ${m('KH')}; kh++) {
    let th = i32(ih) + ${mI('PH')} - i32(kh) * ${mI('DH')};
    if (th < 0 || th % sh != 0 || th / sh >= OH) { continue; }
    let oh = u32(th / sh);
    for (var kw = 0u; kw < ${m('KW')}; kw++) {
      let tw = i32(iw) + ${mI('PW')} - i32(kw) * ${mI('DW')};
      if (tw < 0 || tw % sw != 0 || tw / sw >= OW) { continue; }
      let ow = u32(tw / sw);
      for (var ol = 0u; ol < ${m('OG')}; ol++) {
        let oc = g * ${m('OG')} + ol;
        acc += ${io.ld('dy', at4(CM.y, 'n', 'oc', 'oh', 'ow'))} * ${io.ld('w', at4(CM.w, 'oc', 'cl', 'kh', 'kw'))};
      }
    }
  }
  ${io.st('dx', at4(CM.x, 'n', 'c', 'ih', 'iw'), 'acc')}
}`;
}

function backwardWeight(io: HalfIO): string {
  return `${io.decl(1, 'dw', { write: true })}
${io.decl(2, 'x')}
${io.decl(3, 'dy')}
${io.helpers()}
/** First output index o >= 0 with o*s - p + k*d >= 0, and one past the last with it < size. */
fn outRange(size: i32, s: i32, p: i32, kd: i32, outSize: i32) -> vec2<i32> {
  let lo = max(0, (p - kd + s - 1) / s);
  let t = size - 1 + p - kd;
  let hi = select(min(outSize, t / s + 1), 0, t < 0);
  return vec2<i32>(lo, max(hi, lo));
}
${entry1d()}
  if (gi >= ${m('total')}) { return; }
  let KH = ${m('KH')}; let KW = ${m('KW')}; let CG = ${m('CG')};
  let kw = gi % KW; let kh = (gi / KW) % KH; let cl = (gi / (KW * KH)) % CG; let oc = gi / (KW * KH * CG);
  let c = (oc / ${m('OG')}) * CG + cl;
  let sh = ${mI('SH')}; let sw = ${mI('SW')};
  let rh = outRange(${mI('H')}, sh, ${mI('PH')}, i32(kh) * ${mI('DH')}, ${mI('OH')});
  let rw = outRange(${mI('W')}, sw, ${mI('PW')}, i32(kw) * ${mI('DW')}, ${mI('OW')});
  var acc = 0.0;
  for (var n = 0u; n < ${m('N')}; n++) {
    for (var oh = rh.x; oh < rh.y; oh++) {
      let ih = u32(oh * sh - ${mI('PH')} + i32(kh) * ${mI('DH')});
      for (var ow = rw.x; ow < rw.y; ow++) {
        let iw = u32(ow * sw - ${mI('PW')} + i32(kw) * ${mI('DW')});
        acc += ${io.ld('dy', at4(CM.y, 'n', 'oc', 'u32(oh)', 'u32(ow)'))} * ${io.ld('x', at4(CM.x, 'n', 'c', 'ih', 'iw'))};
      }
    }
  }
  ${io.st('dw', at4(CM.w, 'oc', 'cl', 'kh', 'kw'), 'acc')}
}`;
}

/** Shared-row helpers for the subgroup backward kernels: rows r0 + g*S + sid, clamped to `count - 1`. */
function sharedRows(tm: number, S: number, base: (row: string) => string, count: string): string[] {
  return range(tm / S).map((g) => `let rb${g} = ${base(`min(r0 + ${g * S}u + sid, ${count} - 1u)`)};`);
}

/** Loads one value per lane per row group at `rb{g} + off`, broadcasts each row: `rv{i}`. */
function broadcastRows(io: HalfIO, tm: number, S: number, buf: string, off: string, indent: string): string[] {
  const L = range(tm / S).map((g) => `${indent}let rl${g} = ${io.ld(buf, `rb${g} + ${off}`)};`);
  for (const i of range(tm)) L.push(`${indent}let rv${i} = subgroupBroadcast(rl${Math.floor(i / S)}, ${i % S}u);`);
  return L;
}

/** The rolled store loop of the backward kernels: column j is stored where `colOk{j}`, at `dst` (uses co[j], i). */
function storeRows(io: HalfIO, tm: number, tn: number, rows: string, out: string, dst: string): string[] {
  const L = [`var ov: array<f32, ${tm * tn}>;`, `var co: array<u32, ${tn}>;`, `var cv: array<bool, ${tn}>;`];
  for (const i of range(tm)) for (const j of range(tn)) L.push(`ov[${i * tn + j}] = acc${i}_${j};`);
  for (const j of range(tn)) L.push(`co[${j}] = cOff${j}; cv[${j}] = colOk${j};`);
  L.push(`for (var i = 0u; i < ${tm}u; i++) { for (var j = 0u; j < ${tn}u; j++) {
    if (r0 + i < ${rows} && cv[j]) { ${io.st(out, dst, `ov[i * ${tn}u + j]`)} }
  } }`);
  return L;
}

/**
 * backwardInput with subgroups (groups == 1): dx as a GEMM, rows = input
 * channels (TM per thread, weights shared by broadcast), columns = input
 * pixels (TN per lane), K = (kh, kw, oc). The pixels of one workgroup share
 * their residues (ih mod SH, iw mod SW) (workgroup_id.z = (image chunk,
 * residue class)), so whether a tap row/column divides by the stride is the
 * same for every lane and the taps that cannot hit (3 in 4 at stride 2) are
 * skipped outright; per pixel only the output bounds remain to test. The
 * columns run over the pixels of one class in NB images (meta NB, host-set
 * so the grid stays within 65535 workgroups): with one image per workgroup a
 * 2x2 input at stride 2 filled 1 of 4S columns (layer4.0.conv1 of the 32x32
 * demo: 229 ms at batch 32 on lavapipe).
 */
function backwardInputShared(c: ConvConfig, io: HalfIO): string {
  const { tm, tn } = c;
  const S = c.shareW;
  const L: string[] = [];
  L.push(`let C = ${m('C')}; let H = ${m('H')}; let W = ${m('W')}; let O = ${m('O')};`);
  L.push(`let sh = ${mI('SH')}; let sw = ${mI('SW')}; let OH = ${mI('OH')}; let OW = ${mI('OW')};`);
  L.push(`let Hc = (H + ${m('SH')} - 1u) / ${m('SH')}; let Wc = (W + ${m('SW')} - 1u) / ${m('SW')}; let Qc = Hc * Wc;`);
  L.push(`let cls = wid.z % (${m('SH')} * ${m('SW')}); let nBase = (wid.z / (${m('SH')} * ${m('SW')})) * ${m('NB')}; let rh = cls / ${m('SW')}; let rw = cls % ${m('SW')};`);
  L.push(`let NQ = min(${m('NB')}, ${m('N')} - nBase) * Qc;`);
  L.push(`let r0 = wid.x * ${tm}u; let q0 = (wid.y * ${S}u + lid.x) * ${tn}u;`);
  L.push(`let wso = mu(${CM.w + 1}u); let wsh = mu(${CM.w + 3}u); let wsw = mu(${CM.w + 4}u); let dyso = mu(${CM.y + 2}u);`);
  L.push(...sharedRows(tm, S, (row) => `mu(${CM.w}u) + ${row} * mu(${CM.w + 2}u)`, 'C'));
  for (const j of range(tn)) {
    L.push(`let qn${j} = min(q0 + ${j}u, NQ - 1u); let n${j} = nBase + qn${j} / Qc; let qq${j} = qn${j} % Qc;`);
    L.push(`let ih${j} = rh + ${m('SH')} * (qq${j} / Wc); let iw${j} = rw + ${m('SW')} * (qq${j} % Wc);`);
    L.push(`let colOk${j} = q0 + ${j}u < NQ && ih${j} < H && iw${j} < W;`);
    L.push(`let cOff${j} = mu(${CM.x}u) + n${j} * mu(${CM.x + 1}u) + min(ih${j}, H - 1u) * mu(${CM.x + 3}u) + min(iw${j}, W - 1u) * mu(${CM.x + 4}u);`);
  }
  for (const i of range(tm)) for (const j of range(tn)) L.push(`var acc${i}_${j} = 0.0;`);
  L.push(`for (var kh = 0u; kh < ${m('KH')}; kh++) {`);
  L.push(`  if ((i32(rh) + ${mI('PH')} - i32(kh) * ${mI('DH')}) % sh != 0) { continue; }`);
  L.push(`  for (var kw = 0u; kw < ${m('KW')}; kw++) {`);
  L.push(`    if ((i32(rw) + ${mI('PW')} - i32(kw) * ${mI('DW')}) % sw != 0) { continue; }`);
  for (const j of range(tn)) {
    L.push(`    let th${j} = i32(ih${j}) + ${mI('PH')} - i32(kh) * ${mI('DH')}; let tw${j} = i32(iw${j}) + ${mI('PW')} - i32(kw) * ${mI('DW')};`);
    L.push(`    let ok${j} = th${j} >= 0 && tw${j} >= 0 && th${j} / sh < OH && tw${j} / sw < OW;`);
    L.push(`    let yb${j} = select(0u, ${at4(CM.y, `n${j}`, '0u', `u32(th${j} / sh)`, `u32(tw${j} / sw)`)}, ok${j});`);
  }
  L.push('    let wk = kh * wsh + kw * wsw;');
  L.push('    for (var oc = 0u; oc < O; oc++) {');
  L.push(...broadcastRows(io, tm, S, 'w', 'oc * wso + wk', '      '));
  for (const j of range(tn)) L.push(`      let v${j} = select(0.0, ${io.ld('dy', `yb${j} + oc * dyso`)}, ok${j});`);
  for (const i of range(tm)) for (const j of range(tn)) L.push(`      acc${i}_${j} += rv${i} * v${j};`);
  L.push('    }');
  L.push('  }');
  L.push('}');
  L.push(...storeRows(io, tm, tn, 'C', 'dx', `co[j] + (r0 + i) * mu(${CM.x + 2}u)`));
  return `${io.decl(1, 'dx', { write: true })}
${io.decl(2, 'dy')}
${io.decl(3, 'w')}
${io.helpers()}
@compute @workgroup_size(${S}, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(subgroup_invocation_id) sid: u32) {
  ${L.join('\n  ')}
}`;
}

/**
 * backwardWeight with subgroups (groups == 1): dw as a GEMM, rows = output
 * channels (TM per thread, dy shared by broadcast), columns = (c, kh, kw)
 * (TN per lane), K = (n, oh, ow); each column tests its input tap's bounds.
 */
function backwardWeightShared(c: ConvConfig, io: HalfIO): string {
  const { tm, tn } = c;
  const S = c.shareW;
  const L: string[] = [];
  L.push(`let O = ${m('O')}; let KH = ${m('KH')}; let KW = ${m('KW')}; let KK = KH * KW; let Q = ${m('CG')} * KK;`);
  L.push(`let r0 = wid.x * ${tm}u; let q0 = (wid.y * ${S}u + lid.x) * ${tn}u;`);
  L.push(`let H = ${mI('H')}; let W = ${mI('W')}; let OH = ${m('OH')}; let OW = ${m('OW')};`);
  L.push(`let sh = ${mI('SH')}; let sw = ${mI('SW')};`);
  L.push(`let xsn = mu(${CM.x + 1}u); let xsh = mu(${CM.x + 3}u); let xsw = mu(${CM.x + 4}u);`);
  L.push(`let ysn = mu(${CM.y + 1}u); let ysh = mu(${CM.y + 3}u); let ysw = mu(${CM.y + 4}u);`);
  L.push(...sharedRows(tm, S, (row) => `mu(${CM.y}u) + ${row} * mu(${CM.y + 2}u)`, 'O'));
  for (const j of range(tn)) {
    L.push(`let qq${j} = min(q0 + ${j}u, Q - 1u); let c${j} = qq${j} / KK; let kh${j} = (qq${j} % KK) / KW; let kw${j} = qq${j} % KW;`);
    L.push(`let cOff${j} = mu(${CM.w}u) + c${j} * mu(${CM.w + 2}u) + kh${j} * mu(${CM.w + 3}u) + kw${j} * mu(${CM.w + 4}u);`);
    L.push(`let xc${j} = mu(${CM.x}u) + c${j} * mu(${CM.x + 2}u);`);
    L.push(`let dh${j} = i32(kh${j}) * ${mI('DH')} - ${mI('PH')}; let dw${j} = i32(kw${j}) * ${mI('DW')} - ${mI('PW')};`);
  }
  for (const i of range(tm)) for (const j of range(tn)) L.push(`var acc${i}_${j} = 0.0;`);
  L.push(`for (var n = 0u; n < ${m('N')}; n++) {`);
  L.push('  for (var oh = 0u; oh < OH; oh++) {');
  for (const j of range(tn)) {
    L.push(`    let ih${j} = i32(oh) * sh + dh${j}; let rowOk${j} = ih${j} >= 0 && ih${j} < H;`);
    L.push(`    let xr${j} = xc${j} + n * xsn + u32(max(ih${j}, 0)) * xsh;`);
  }
  L.push('    let yr = n * ysn + oh * ysh;');
  L.push('    for (var ow = 0u; ow < OW; ow++) {');
  L.push(...broadcastRows(io, tm, S, 'dy', 'yr + ow * ysw', '      '));
  for (const j of range(tn)) {
    L.push(`      let iw${j} = i32(ow) * sw + dw${j}; let ok${j} = rowOk${j} && iw${j} >= 0 && iw${j} < W;`);
    L.push(`      let v${j} = select(0.0, ${io.ld('x', `select(0u, xr${j} + u32(iw${j}) * xsw, ok${j})`)}, ok${j});`);
  }
  for (const i of range(tm)) for (const j of range(tn)) L.push(`      acc${i}_${j} += rv${i} * v${j};`);
  L.push('    }');
  L.push('  }');
  L.push('}');
  for (const j of range(tn)) L.push(`let colOk${j} = q0 + ${j}u < Q;`);
  L.push(...storeRows(io, tm, tn, 'O', 'dw', `co[j] + (r0 + i) * mu(${CM.w + 1}u)`));
  return `${io.decl(1, 'dw', { write: true })}
${io.decl(2, 'x')}
${io.decl(3, 'dy')}
${io.helpers()}
@compute @workgroup_size(${S}, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(subgroup_invocation_id) sid: u32) {
  ${L.join('\n  ')}
}`;
}

/**
 * im2col for ungrouped convs: col[n][k][p] = x at tap k = (c, kh, kw) of
 * output pixel p (0 in the padding), rows padded to OHWp = OH*OW rounded
 * up to 4 (zeros) so the GEMM reads them as vec4. Thread (x, k, n) writes
 * pixels 4x..4x+3 of row (n, k) as one vec4. Quotients come from f32
 * division (exact below 2^22, host-checked): CPU adapters run integer
 * division lane by lane, which made this kernel 20% of a ResNet18 forward.
 * With `batchCols` a row holds tap k of every image's pixels,
 * col[k][n*OH*OW + p], padded to a multiple of 4 (thread (x, k): columns
 * 4x..4x+3, which may span images): the weight gradient's single GEMM
 * reduces over the batch's pixels along it (ops/conv-weight.ts).
 */
function im2col(io: HalfIO, batchCols: boolean): string {
  const pixel = batchCols
    ? 'let j = p0 + E; let n = fdiv(j, OHW); let p = j - n * OHW; let base = xBase + n * mu(XSN);'
    : 'let p = p0 + E;';
  const e4 = range(4).map((e) => `
  { ${pixel.replace('E', `${e}u`).replace('XSN', `${CM.x + 1}u`)} let oh = fdiv(p, OW); let ih = i32(oh) * sh - ph + kh; let iw = i32(p - oh * OW) * sw - pw + kw;
    let ok = ${batchCols ? 'j < cols' : 'p < OHW'} && ih >= 0 && ih < H && iw >= 0 && iw < W;
    v.${'xyzw'[e]} = select(0.0, ${io.ld('x', 'select(0u, base + u32(ih) * xsh + u32(iw) * xsw, ok)')}, ok); }`).join('');
  const decls = [io.decl(1, 'col', { write: true, vec4: true }), io.decl(2, 'x')];
  return `${decls.join('\n')}
${io.helpers()}
fn fdiv(a: u32, b: u32) -> u32 { return u32((f32(a) + 0.5) / f32(b)); }
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let OW = ${m('OW')}; let OHW = ${m('OH')} * OW; ${batchCols ? `let cols = ${m('N')} * OHW;` : 'let cols = OHW;'} let rowV = (cols + 3u) / 4u;
  if (gid.x >= rowV) { return; }
  let KW = ${m('KW')}; let KK = ${m('KH')} * KW; let k = gid.y;
  let c = fdiv(k, KK); let t = k - c * KK; let khi = fdiv(t, KW);
  let kh = i32(khi) * ${mI('DH')}; let kw = i32(t - khi * KW) * ${mI('DW')};
  let H = ${mI('H')}; let W = ${mI('W')}; let sh = ${mI('SH')}; let sw = ${mI('SW')}; let ph = ${mI('PH')}; let pw = ${mI('PW')};
  let xsh = mu(${CM.x + 3}u); let xsw = mu(${CM.x + 4}u);
  ${batchCols
    ? `let xBase = mu(${CM.x}u) + c * mu(${CM.x + 2}u);`
    : `let n = gid.z; let base = mu(${CM.x}u) + n * mu(${CM.x + 1}u) + c * mu(${CM.x + 2}u);`}
  let p0 = gid.x * 4u;
  var v = vec4<f32>(0.0);${e4}
  ${io.st4('col', batchCols ? 'k * rowV + gid.x' : `(n * ${m('CG')} * KK + k) * rowV + gid.x`, 'v')}
}`;
}

export function convWgsl(c: ConvConfig): string {
  const io = new HalfIO(c.half);
  const body = c.kind === 'im2col' ? im2col(io, !!c.batchCols) : c.kind === 'forward' ? forward(c, io)
    : c.kind === 'backwardInput' ? (c.shareW ? backwardInputShared(c, io) : backwardInput(io))
    : c.shareW ? backwardWeightShared(c, io) : backwardWeight(io);
  return `${c.shareW ? 'enable subgroups;' : ''}
${metaDecl(CM.words)}
${PRELUDE}
${body}
`;
}
