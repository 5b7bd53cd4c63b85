/**
 * Pooling (NCHW): maxPool2d (+ int32 argmax indices), avgPool2d, adaptive
 * average pooling, and their backward passes.
 *
 * Forward: one thread per output element walks its window (reads KH*KW
 * inputs). Backward: one thread per dx element gathers from every output
 * window that covers it (for max pooling: those whose saved index points
 * at it), so overlapping windows never race and dx is fully written.
 * Workgroups of 256 threads, no shared memory. Window rules follow
 * PyTorch: max pooling lets NaN win; avg pooling divides by the window
 * clipped to the padded image (countIncludePad) or to the image, unless
 * divisorOverride is set; adaptive windows are [floor(i*H/OH), ceil((i+1)*H/OH)).
 * float16 (`half`: 'x' and/or 'y', the input-sized and output-sized views):
 * packed words (wgsl/half.ts HalfIO) read as their exact f32 values, sums in
 * f32 (PyTorch's half pooling accumulates in float32), a float16 result
 * rounded once; max pooling's result is an input value, so it is exact.
 */
import { bufferDecl, entry1d, metaDecl, PRELUDE } from './common.js';
import { HalfIO } from './half.js';

export type PoolKind = 'max' | 'maxBackward' | 'avg' | 'avgBackward' | 'adaptive' | 'adaptiveBackward';

/** Meta: geometry, then (offset, 4 strides) of x (or dx), y (or dy), indices. */
export const PM = {
  N: 0, C: 1, H: 2, W: 3, OH: 4, OW: 5, KH: 6, KW: 7, SH: 8, SW: 9, PH: 10, PW: 11, DH: 12, DW: 13,
  includePad: 14, divisor: 15, total: 16, x: 17, y: 22, idx: 27, words: 32,
};

/**
 * Compile-time geometry of the max-pool kernels (forward and backward): the window (kernel,
 * stride, padding, dilation), the input and output planes, and whether every
 * view's (n, c) dims merge into one (stride_n == C * stride_c, so the kernel
 * needs no division by C). Integer division by a runtime value is one scalar
 * division per lane on CPU adapters (llvmpipe has no vector divide); by a
 * constant it is a multiply and shift.
 */
export interface MaxPoolGeometry {
  kernel: readonly [number, number];
  stride: readonly [number, number];
  padding: readonly [number, number];
  dilation: readonly [number, number];
  /** Input plane H, W and output plane OH, OW. */
  plane: readonly [number, number, number, number];
  mergedNC: boolean;
}

/** Cache key of one pooling kernel; `half` names its float16 views ('x': input-sized, 'y': output-sized). */
export function poolKey(kind: PoolKind, half: string[] = [], geo?: MaxPoolGeometry): string {
  const g = geo ? `:${[...geo.kernel, ...geo.stride, ...geo.padding, ...geo.dilation, ...geo.plane].join(',')}${geo.mergedNC ? 'm' : ''}` : '';
  return `pool:${kind}${new HalfIO(half).key()}${g}`;
}

const m = (k: keyof typeof PM) => `mu(${PM[k]}u)`;
const mI = (k: keyof typeof PM) => `mi(${PM[k]}u)`;
const at4 = (at: number, n: string, c: string, h: string, w: string) =>
  `(mu(${at}u) + ${n} * mu(${at + 1}u) + ${c} * mu(${at + 2}u) + ${h} * mu(${at + 3}u) + ${w} * mu(${at + 4}u))`;

/** Decomposes gi over [N, C, h, w] into n, c, oh/ih, ow/iw. */
const coords = (hName: string, wName: string, hDim: string, wDim: string) =>
  `let ${wName} = gi % ${wDim}; let ${hName} = (gi / ${wDim}) % ${hDim}; let c = (gi / (${wDim} * ${hDim})) % ${m('C')}; let n = gi / (${wDim} * ${hDim} * ${m('C')});`;

/** avg pooling window of output (oh, ow): clipped bounds and divisor. */
const AVG_WINDOW = /* wgsl */ `
struct Win { h0: i32, h1: i32, w0: i32, w1: i32, div: f32 }
fn avgWindow(oh: i32, ow: i32) -> Win {
  let H = mi(${PM.H}u); let W = mi(${PM.W}u);
  var h0 = oh * mi(${PM.SH}u) - mi(${PM.PH}u); var w0 = ow * mi(${PM.SW}u) - mi(${PM.PW}u);
  var h1 = min(h0 + mi(${PM.KH}u), H + mi(${PM.PH}u)); var w1 = min(w0 + mi(${PM.KW}u), W + mi(${PM.PW}u));
  let padded = f32((h1 - h0) * (w1 - w0));
  h0 = max(h0, 0); w0 = max(w0, 0); h1 = min(h1, H); w1 = min(w1, W);
  var div = select(f32(max(h1 - h0, 0) * max(w1 - w0, 0)), padded, mu(${PM.includePad}u) != 0u);
  if (mu(${PM.divisor}u) != 0u) { div = f32(mi(${PM.divisor}u)); }
  return Win(h0, h1, w0, w1, div);
}
fn adaptiveStart(i: i32, inSize: i32, outSize: i32) -> i32 { return (i * inSize) / outSize; }
fn adaptiveEnd(i: i32, inSize: i32, outSize: i32) -> i32 { return ((i + 1) * inSize + outSize - 1) / outSize; }
`;

/** The geometry's numbers by name, to be spliced into WGSL as constants. */
function geometryConstants(g: MaxPoolGeometry) {
  const [KH, KW] = g.kernel;
  const [SH, SW] = g.stride;
  const [PH, PW] = g.padding;
  const [DH, DW] = g.dilation;
  const [H, W, OH, OW] = g.plane;
  return { KH, KW, SH, SW, PH, PW, DH, DW, H, W, OH, OW };
}

/** (n, c) and the offset of element (h, w) of view `at` under geometry g (nc = n * C + c). */
function planeIndex(g: MaxPoolGeometry): { decl: string; off: (at: number, h: string, w: string) => string } {
  return {
    decl: g.mergedNC ? '' : `let c = nc % ${m('C')}; let n = nc / ${m('C')};`,
    off: (at, h, w) => g.mergedNC
      ? `(mu(${at}u) + nc * mu(${at + 2}u) + ${h} * mu(${at + 3}u) + ${w} * mu(${at + 4}u))`
      : at4(at, 'n', 'c', h, w),
  };
}

/**
 * Max-pool forward, one thread per output (oh, ow): the window's taps with
 * compile-time bounds (unrolled), padding skipped (it acts as -inf); NaN
 * wins and otherwise the first maximum, as PyTorch; the argmax is the flat
 * ih * W + iw of the plane.
 */
function maxForwardBody(io: HalfIO, g: MaxPoolGeometry): string {
  const { KH, KW, SH, SW, PH, PW, DH, DW, H, W, OH, OW } = geometryConstants(g);
  const { decl, off } = planeIndex(g);
  return `let ow = gi % ${OW}u; let oh = (gi / ${OW}u) % ${OH}u; let nc = gi / ${OW * OH}u;
  ${decl}
  let h0 = i32(oh) * ${SH} - ${PH}; let w0 = i32(ow) * ${SW} - ${PW};
  var best = fbits(0xff800000u); var bestIdx = -1;
  for (var kh = 0; kh < ${KH}; kh++) {
    let ih = h0 + kh * ${DH};
    if (ih < 0 || ih >= ${H}) { continue; }
    for (var kw = 0; kw < ${KW}; kw++) {
      let iw = w0 + kw * ${DW};
      if (iw < 0 || iw >= ${W}) { continue; }
      let v = ${io.ld('x', off(PM.x, 'u32(ih)', 'u32(iw)'))};
      if (bestIdx < 0 || v > best || isnan_(v)) { best = v; bestIdx = ih * ${W} + iw; }
    }
  }
  ${io.st('y', off(PM.y, 'oh', 'ow'), 'best')}
  idx[${off(PM.idx, 'oh', 'ow')}] = max(bestIdx, 0);`;
}

/**
 * Max-pool backward, one thread per dx element (ih, iw): only windows whose
 * row/column span covers it can have picked it, oh in
 * [ceil((ih + PH - DH*(KH-1)) / SH), floor((ih + PH) / SH)] clipped to
 * [0, OH) (the same for ow), visited in ascending (oh, ow) order as PyTorch's
 * CPU kernel adds them; the saved argmax decides. Every divisor but C is a
 * constant, and C is none when (n, c) merge.
 */
function maxBackwardBody(io: HalfIO, g: MaxPoolGeometry): string {
  const { KH, KW, SH, SW, PH, PW, DH, DW, H, W, OH, OW } = geometryConstants(g);
  const { decl, off } = planeIndex(g);
  return `let iw = gi % ${W}u; let ih = (gi / ${W}u) % ${H}u; let nc = gi / ${W * H}u;
  ${decl}
  let me = i32(ih * ${W}u + iw);
  let ohLo = (u32(max(i32(ih) + ${PH - DH * (KH - 1)}, 0)) + ${SH - 1}u) / ${SH}u; let ohHi = min(${OH - 1}u, (ih + ${PH}u) / ${SH}u);
  let owLo = (u32(max(i32(iw) + ${PW - DW * (KW - 1)}, 0)) + ${SW - 1}u) / ${SW}u; let owHi = min(${OW - 1}u, (iw + ${PW}u) / ${SW}u);
  var acc = 0.0;
  for (var oh = ohLo; oh <= ohHi; oh++) {
    for (var ow = owLo; ow <= owHi; ow++) {
      if (idx[${off(PM.idx, 'oh', 'ow')}] == me) { acc += ${io.ld('y', off(PM.y, 'oh', 'ow'))}; }
    }
  }
  ${io.st('x', off(PM.x, 'ih', 'iw'), 'acc')}`;
}

function body(kind: PoolKind, io: HalfIO, geo: MaxPoolGeometry | undefined): string {
  const ldX = (i: string) => io.ld('x', i);
  const ldY = (i: string) => io.ld('y', i);
  switch (kind) {
    case 'max':
      return maxForwardBody(io, geo!);
    case 'maxBackward':
      return maxBackwardBody(io, geo!);
    case 'avg':
      return `${coords('oh', 'ow', m('OH'), m('OW'))}
  let win = avgWindow(i32(oh), i32(ow));
  var acc = 0.0;
  for (var ih = win.h0; ih < win.h1; ih++) {
    for (var iw = win.w0; iw < win.w1; iw++) { acc += ${ldX(at4(PM.x, 'n', 'c', 'u32(ih)', 'u32(iw)'))}; }
  }
  ${io.st('y', at4(PM.y, 'n', 'c', 'oh', 'ow'), 'select(acc / win.div, 0.0, win.h0 >= win.h1 || win.w0 >= win.w1)')}`;
    case 'avgBackward':
      return `${coords('ih', 'iw', m('H'), m('W'))}
  let sh = ${mI('SH')}; let sw = ${mI('SW')};
  let ohLo = max(0, (i32(ih) + ${mI('PH')} - ${mI('KH')}) / sh); let ohHi = min(${mI('OH')} - 1, (i32(ih) + ${mI('PH')}) / sh);
  let owLo = max(0, (i32(iw) + ${mI('PW')} - ${mI('KW')}) / sw); let owHi = min(${mI('OW')} - 1, (i32(iw) + ${mI('PW')}) / sw);
  var acc = 0.0;
  for (var oh = ohLo; oh <= ohHi; oh++) {
    for (var ow = owLo; ow <= owHi; ow++) {
      let win = avgWindow(oh, ow);
      if (i32(ih) >= win.h0 && i32(ih) < win.h1 && i32(iw) >= win.w0 && i32(iw) < win.w1) {
        acc += ${ldY(at4(PM.y, 'n', 'c', 'u32(oh)', 'u32(ow)'))} / win.div;
      }
    }
  }
  ${io.st('x', at4(PM.x, 'n', 'c', 'ih', 'iw'), 'acc')}`;
    case 'adaptive':
      return `${coords('oh', 'ow', m('OH'), m('OW'))}
  let H = ${mI('H')}; let W = ${mI('W')}; let OH = ${mI('OH')}; let OW = ${mI('OW')};
  let h0 = adaptiveStart(i32(oh), H, OH); let h1 = adaptiveEnd(i32(oh), H, OH);
  let w0 = adaptiveStart(i32(ow), W, OW); let w1 = adaptiveEnd(i32(ow), W, OW);
  var acc = 0.0;
  for (var ih = h0; ih < h1; ih++) {
    for (var iw = w0; iw < w1; iw++) { acc += ${ldX(at4(PM.x, 'n', 'c', 'u32(ih)', 'u32(iw)'))}; }
  }
  ${io.st('y', at4(PM.y, 'n', 'c', 'oh', 'ow'), 'acc / f32((h1 - h0) * (w1 - w0))')}`;
    case 'adaptiveBackward':
      return `${coords('ih', 'iw', m('H'), m('W'))}
  let H = ${mI('H')}; let W = ${mI('W')}; let OH = ${mI('OH')}; let OW = ${mI('OW')};
  var acc = 0.0;
  for (var oh = max(0, (i32(ih) * OH) / H - 1); oh < min(OH, ((i32(ih) + 1) * OH) / H + 2); oh++) {
    let h0 = adaptiveStart(oh, H, OH); let h1 = adaptiveEnd(oh, H, OH);
    if (i32(ih) < h0 || i32(ih) >= h1) { continue; }
    for (var ow = max(0, (i32(iw) * OW) / W - 1); ow < min(OW, ((i32(iw) + 1) * OW) / W + 2); ow++) {
      let w0 = adaptiveStart(ow, W, OW); let w1 = adaptiveEnd(ow, W, OW);
      if (i32(iw) < w0 || i32(iw) >= w1) { continue; }
      acc += ${ldY(at4(PM.y, 'n', 'c', 'u32(oh)', 'u32(ow)'))} / f32((h1 - h0) * (w1 - w0));
    }
  }
  ${io.st('x', at4(PM.x, 'n', 'c', 'ih', 'iw'), 'acc')}`;
  }
}

/**
 * The WGSL of one pooling kernel; `half` names its float16 views ('x': input-sized, 'y': output-sized);
 * max and maxBackward take their compile-time geometry.
 */
export function poolWgsl(kind: PoolKind, half: string[] = [], geo?: MaxPoolGeometry): string {
  if ((kind === 'max' || kind === 'maxBackward') && !geo) throw new Error(`pool: ${kind} needs its geometry`);
  const backward = kind.endsWith('Backward');
  const io = new HalfIO(half);
  const decls = [
    io.decl(1, backward ? 'x' : 'y', { write: true }),
    io.decl(2, backward ? 'y' : 'x'),
  ];
  if (kind === 'max') decls.push(bufferDecl(3, 'idx', 'i32', true));
  if (kind === 'maxBackward') decls.push(bufferDecl(3, 'idx', 'i32'));
  return `${metaDecl(PM.words)}
${PRELUDE}
${AVG_WINDOW}
${decls.join('\n')}
${io.helpers()}
${entry1d()}
  if (gi >= ${m('total')}) { return; }
  ${body(kind, io, geo)}
}
`;
}
