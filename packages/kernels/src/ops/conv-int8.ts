/**
 * Backend glue for the fused int8 convolution (conv2d with a `quant`
 * epilogue): the int8 register GEMM with its `conv` flag (implicit im2col
 * over the packed channels-last activation, gemm-int8.ts), the same block,
 * inner-product path and requantizing epilogue as the int8 GEMM.
 */
import { KilnError, type Conv2dParams, type MatmulEpilogue, type QuantEpilogue, type View } from '@kiln/core';
import type { OpContext } from '../backend.js';
import type { GPUStorage } from '../pool.js';
import { gemmKey, gemmWgsl, type GemmConfig } from '../wgsl/gemm.js';
import { GQ, GQC, type Int8Gemm } from '../wgsl/gemm-int8.js';
import { Meta } from './elementwise.js';
import { gemmBlock } from '../tuning.js';
import { int8DotPath } from './matmul-int8.js';

type GView = View<GPUStorage>;

/**
 * Encodes y = requantize(conv2d(x, w)) for x uint8/int8 [N, C, H, W] stored
 * channels-last (strides [*, 1, *, C], word-aligned), w int8 [O, C, kh, kw]
 * stored as [O, kh, kw, C] (strides [K, 1, kw*C, C]), out uint8/int8
 * [N, O, oH, oW] channels-last and contiguous, C a multiple of 4, groups 1.
 */
export function conv2dInt8(
  ctx: OpContext, x: GView, w: GView, out: GView, p: Conv2dParams,
  e: Omit<MatmulEpilogue<GPUStorage>, 'biasAxis' | 'alpha'> & { quant: QuantEpilogue<GPUStorage> },
): void {
  const op = 'conv2d (int8)';
  const [N, C, H, W] = x.shape as [number, number, number, number];
  const [O, , KH, KW] = w.shape as [number, number, number, number];
  const [, , OH, OW] = out.shape as [number, number, number, number];
  const [xn, xc, xh, xw] = x.strides as [number, number, number, number];
  if (p.groups !== 1) throw new KilnError(op, `expected groups 1, got ${p.groups}`);
  if (C % 4 !== 0 || xc !== 1 || [x.offset, xn, xh, xw].some((v) => v % 4 !== 0)) {
    throw new KilnError(op, `expected a channels-last input with channels a multiple of 4 and word-aligned strides, got shape [${x.shape}] strides [${x.strides}] offset ${x.offset}`);
  }
  const K = KH * KW * C;
  const wExpect = [K, 1, KW * C, C];
  if (w.strides.some((s, d) => s !== wExpect[d]) || w.offset % 4 !== 0) {
    throw new KilnError(op, `expected the weight stored as [O, kh, kw, C] (strides [${wExpect}]), got strides [${w.strides}] offset ${w.offset}`);
  }
  const oExpect = [OH * OW * O, 1, OW * O, O];
  if (out.strides.some((s, d) => s !== oExpect[d] && out.shape[d] !== 1)) {
    throw new KilnError(op, `expected a contiguous channels-last output (strides [${oExpect}]), got [${out.strides}]`);
  }
  if (out.dtype !== 'uint8' && out.dtype !== 'int8') throw new KilnError(op, `expected an int8 or uint8 output, got ${out.dtype}`);
  const M = N * OH * OW;
  if (M === 0 || O === 0) return;
  const q = e.quant;
  const int8: Int8Gemm = {
    a: x.dtype === 'uint8' ? 'u8' : 'i8',
    dot: int8DotPath(ctx),
    out: out.dtype === 'uint8' ? 'u8' : 'i8',
    bias: q.bias?.dtype === 'float32' ? 'f32' : 'i32',
    conv: true,
  };
  const block = gemmBlock(ctx.tuning);
  const config: GemmConfig = {
    strategy: 'register', tm: block.tm, tn: block.tn, wg: block.wg, a: 'k4', b: 'k4', cols: 'block',
    grid: block.grid, shareA: block.shareA, int8,
  };
  const meta = new Meta(GQC.words);
  meta.set(GQ.M, [M, O, K, 1]);
  meta.set(GQ.a, [x.offset, 0, 0, 1]);
  meta.set(GQ.b, [w.offset, 0, 1, K]);
  meta.set(GQ.out, [out.offset, 0, O, 1]);
  meta.u[GQ.epi] = (q.bias ? 1 : 0) | (e.relu ? 2 : 0);
  const zo = q.outZeroPoint ?? 0;
  const [qmin, qmax] = out.dtype === 'uint8' ? [0, 255] : [-128, 127];
  meta.set(GQ.zpAt, [q.aZeroPoint.offset, q.bColSum.offset, q.scale.offset, q.bias?.offset ?? 0]);
  meta.i32(GQ.zo, zo).i32(GQ.lo, e.relu ? Math.max(qmin, zo) : qmin).i32(GQ.hi, qmax);
  meta.set(GQC.H, [H, W, C / 4, KH, KW, p.stride[0], p.stride[1], p.dilation[0], p.dilation[1], OH, OW, xn, xh, xw]);
  meta.i32(GQC.PH, p.padding[0]).i32(GQC.PW, p.padding[1]);
  const bind = (v: GView | undefined) => ({ buffer: v?.storage.buffer ?? ctx.rt.placeholder });
  const { tm, tn, wg, grid } = config;
  const workgroups: [number, number, number] = grid === 'mn'
    ? [Math.ceil(M / tm / wg[1]), Math.ceil(O / tn / wg[0]), 1]
    : [Math.ceil(O / tn / wg[0]), Math.ceil(M / tm / wg[1]), 1];
  ctx.rt.dispatch({
    kernel: 'conv2d.int8',
    key: gemmKey(config),
    code: () => gemmWgsl(config),
    bindings: [{ buffer: out.storage.buffer, write: true }, bind(x), bind(w), bind(q.aZeroPoint), bind(q.bColSum), bind(q.scale), bind(q.bias)],
    meta: meta.u,
    workgroups,
  });
}
