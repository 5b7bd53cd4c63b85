/**
 * 2-D convolution (NCHW, groups, stride, padding, dilation) as implicit
 * GEMM: no im2col buffer is ever materialised.
 *
 * forward: one thread computes a TM x TN block (TM output channels of one
 * group x TN output pixels, pixels flattened over N*OH*OW); a workgroup is
 * 16 x 4 threads. Per (c, kh, kw) it reads TM weights and TN input values
 * (zero outside the padded image) and does TM*TN FMAs; the epilogue adds
 * bias[oc] and residual and applies ReLU. No shared memory (barrier-free
 * suits CPU adapters, and inputs are re-read from cache on GPUs).
 * backwardInput: one thread per dx element sums dy * w over the output
 * positions whose window covers it (stride divisibility tested per tap).
 * backwardWeight: one thread per dw element sums dy * x over N and the
 * output positions whose tap lands inside the image (ranges precomputed).
 */
import { bufferDecl, metaDecl, PRELUDE, entry1d } from './common.js';

export interface ConvConfig {
  kind: 'forward' | 'backwardInput' | 'backwardWeight';
  tm: number;
  tn: number;
  bias: boolean;
  residual: boolean;
  relu: boolean;
}

/** Meta layout: geometry, then (offset, 4 strides) of x, w, y (out or dy), bias, residual. */
export const CM = {
  N: 0, C: 1, H: 2, W: 3, O: 4, OH: 5, OW: 6, KH: 7, KW: 8, SH: 9, SW: 10, PH: 11, PW: 12, DH: 13, DW: 14,
  G: 15, CG: 16, OG: 17, x: 18, w: 23, y: 28, bias: 33, res: 35, total: 40, words: 41,
};
export const CONV_WG = [16, 4] as const;

export function convKey(c: ConvConfig): string {
  return `conv:${c.kind}:${c.tm}x${c.tn}:${c.bias ? 'b' : ''}${c.residual ? 'r' : ''}${c.relu ? 'R' : ''}`;
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const m = (k: keyof typeof CM) => `mu(${CM[k]}u)`;
const mI = (k: keyof typeof CM) => `mi(${CM[k]}u)`;
/** offset of element (n, c, h, w) of the view whose meta starts at `at` */
const at4 = (at: number, n: string, c: string, h: string, w: string) =>
  `(mu(${at}u) + ${n} * mu(${at + 1}u) + ${c} * mu(${at + 2}u) + ${h} * mu(${at + 3}u) + ${w} * mu(${at + 4}u))`;

function forward(c: ConvConfig): string {
  const { tm, tn } = c;
  const L: string[] = [];
  L.push(`let O = ${m('O')}; let OHW = ${m('OH')} * ${m('OW')}; let P = ${m('N')} * OHW;`);
  L.push(`let p0 = gid.x * ${tn}u; let oc0 = gid.y * ${tm}u;`);
  L.push('if (p0 >= P || oc0 >= O) { return; }');
  L.push(`let H = ${mI('H')}; let W = ${mI('W')}; let KH = ${m('KH')}; let KW = ${m('KW')};`);
  L.push(`let cBase = (oc0 / ${m('OG')}) * ${m('CG')}; let CG = ${m('CG')};`);
  L.push(`let xsc = mu(${CM.x + 2}u); let xsh = mu(${CM.x + 3}u); let xsw = mu(${CM.x + 4}u);`);
  L.push(`let wsc = mu(${CM.w + 2}u); let wsh = mu(${CM.w + 3}u); let wsw = mu(${CM.w + 4}u);`);
  L.push(`let dh = ${mI('DH')}; let dw = ${mI('DW')};`);
  for (const j of range(tn)) {
    L.push(`let px${j} = min(p0 + ${j}u, P - 1u); let n${j} = px${j} / OHW; let oh${j} = (px${j} % OHW) / ${m('OW')}; let ow${j} = px${j} % ${m('OW')};`);
    L.push(`let ih${j} = i32(oh${j} * ${m('SH')}) - ${mI('PH')}; let iw${j} = i32(ow${j} * ${m('SW')}) - ${mI('PW')};`);
    L.push(`let xb${j} = mu(${CM.x}u) + n${j} * mu(${CM.x + 1}u) + cBase * xsc;`);
  }
  for (const i of range(tm)) L.push(`let wb${i} = mu(${CM.w}u) + min(oc0 + ${i}u, O - 1u) * mu(${CM.w + 1}u);`);
  for (const i of range(tm)) for (const j of range(tn)) L.push(`var acc${i}_${j} = 0.0;`);
  L.push('for (var ci = 0u; ci < CG; ci++) {');
  L.push('  for (var kh = 0u; kh < KH; kh++) {');
  for (const j of range(tn)) {
    L.push(`    let y${j} = ih${j} + i32(kh) * dh; let rowOk${j} = y${j} >= 0 && y${j} < H;`);
    L.push(`    let row${j} = xb${j} + ci * xsc + u32(max(y${j}, 0)) * xsh;`);
  }
  L.push('    let wk = ci * wsc + kh * wsh;');
  L.push('    for (var kw = 0u; kw < KW; kw++) {');
  for (const i of range(tm)) L.push(`      let wv${i} = w[wb${i} + wk + kw * wsw];`);
  for (const j of range(tn)) {
    L.push(`      let x${j} = iw${j} + i32(kw) * dw; let ok${j} = rowOk${j} && x${j} >= 0 && x${j} < W;`);
    L.push(`      let xv${j} = select(0.0, x[select(0u, row${j} + u32(x${j}) * xsw, ok${j})], ok${j});`);
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
  const bindings = [bufferDecl(1, 'out', 'f32', true), bufferDecl(2, 'x', 'f32'), bufferDecl(3, 'w', 'f32')];
  let next = 4;
  if (c.bias) bindings.push(bufferDecl(next++, 'bias', 'f32'));
  if (c.residual) bindings.push(bufferDecl(next++, 'res', 'f32'));
  return `${bindings.join('\n')}
fn store(n: u32, oc: u32, oh: u32, ow: u32, acc: f32) {
  var v = acc;
  ${c.bias ? `v += bias[mu(${CM.bias}u) + oc * mu(${CM.bias + 1}u)];` : ''}
  ${c.residual ? `v += res[${at4(CM.res, 'n', 'oc', 'oh', 'ow')}];` : ''}
  ${c.relu ? 'v = select(v, 0.0, v < 0.0);' : ''}
  out[${at4(CM.y, 'n', 'oc', 'oh', 'ow')}] = v;
}
@compute @workgroup_size(${CONV_WG[0]}, ${CONV_WG[1]})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${L.join('\n  ')}
}`;
}

function backwardInput(): string {
  return `${bufferDecl(1, 'dx', 'f32', true)}
${bufferDecl(2, 'dy', 'f32')}
${bufferDecl(3, 'w', 'f32')}
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
        acc += dy[${at4(CM.y, 'n', 'oc', 'oh', 'ow')}] * w[${at4(CM.w, 'oc', 'cl', 'kh', 'kw')}];
      }
    }
  }
  dx[${at4(CM.x, 'n', 'c', 'ih', 'iw')}] = acc;
}`;
}

function backwardWeight(): string {
  return `${bufferDecl(1, 'dw', 'f32', true)}
${bufferDecl(2, 'x', 'f32')}
${bufferDecl(3, 'dy', 'f32')}
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
        acc += dy[${at4(CM.y, 'n', 'oc', 'u32(oh)', 'u32(ow)')}] * x[${at4(CM.x, 'n', 'c', 'ih', 'iw')}];
      }
    }
  }
  dw[${at4(CM.w, 'oc', 'cl', 'kh', 'kw')}] = acc;
}`;
}

export function convWgsl(c: ConvConfig): string {
  const body = c.kind === 'forward' ? forward(c) : c.kind === 'backwardInput' ? backwardInput() : backwardWeight();
  return `${metaDecl(CM.words)}
${PRELUDE}
${body}
`;
}
