/**
 * Quantized 2-D convolution: uint8 activations kept channels-last (NHWC
 * storage behind an NCHW view, as PyTorch's x86 engines keep them), one
 * backend conv2d with a `quant` epilogue (the fused int8 conv: implicit GEMM
 * over the packed activation, no im2col buffer; channels that do not fill
 * whole u32 words, as the stem's 3, are padded to 4). The route it replaced,
 * kept behind {@link quantizedConvOverride} for tests and benchmarks: an
 * im2col gather padded with the input zero point (so padding contributes
 * (zp - zp) * w = 0) and the integer GEMM. Both compute the same int32 sums
 * and the same requantizing epilogue, so the same integers.
 * Output: a quint8 QTensor, again an NCHW view of NHWC integers.
 */
import { KilnError, ShapeError, fmtShape } from '../errors.js';
import type { Tensor } from '../tensor.js';
import { tensor } from '../ops/creation.js';
import { pad, stack } from '../ops/indexing.js';
import { tidy, keep } from '../memory.js';
import { noGrad } from '../autograd/grad-mode.js';
import { QTensor } from './qtensor.js';
import { quantizedMatmul } from './qmatmul.js';
import { empty } from '../ops/util.js';
import { quantizeBias, requantMultipliers } from './requant.js';

/** Test/benchmark hook: `path: 'im2col'` forces the im2col + integer GEMM route; unset: the fused conv. */
export const quantizedConvOverride: {
  /** The forced route; unset (or 'fused'): the fused conv. */
  path?: 'im2col' | 'fused';
} = {};

/** Geometry of a quantized conv (groups 1, as every ResNet conv). */
export interface QConvGeometry {
  /** Kernel height and width. */
  kernel: [number, number];
  /** Stride along height and width. */
  stride: [number, number];
  /** Zero padding (in real values: the input zero point) along height and width. */
  padding: [number, number];
  /** Dilation along height and width. */
  dilation: [number, number];
}

/** A conv weight prepared for the integer GEMM. */
export interface QConvWeight {
  /** int8 [O, Kp]: the weight permuted to [O, kh, kw, C], flattened, zero-padded to a multiple of 4. */
  packed: Tensor;
  /** int32 [O]: row sums of the weight. */
  colSum: Tensor;
  /** Per-output-channel weight scales (doubles); zero points are 0. */
  scales: readonly number[];
  /** The real K = C * kh * kw. */
  k: number;
}

/** Prepares int8 weight integers [O, C, kh, kw] (zero point 0) for {@link quantizedConv2d}. */
export function packConvWeight(ints: Tensor, scales: readonly number[]): QConvWeight {
  if (ints.dtype !== 'int8' || ints.dim() !== 4) throw new KilnError('packConvWeight', `expected int8 [O, C, kh, kw] integers, got ${ints.dtype} ${fmtShape(ints.shape)}`);
  const [O, C, kh, kw] = ints.shape as [number, number, number, number];
  const k = C * kh * kw;
  const kp = Math.ceil(k / 4) * 4;
  return noGrad(() => tidy(() => {
    let flat = ints.permute([0, 2, 3, 1]).contiguous().reshape([O, k]);
    if (kp !== k) flat = pad(flat, [0, kp - k]);
    const colSum = ints.to('int32').reshape([O, k]).sum(1).to('int32');
    return { packed: keep(flat), colSum: keep(colSum), scales: [...scales], k };
  }));
}

/** The NHWC integers behind a quantized activation (an NCHW QTensor). */
export function channelsLast(x: QTensor): Tensor {
  const nhwc = x._int.permute([0, 2, 3, 1]);
  return nhwc.isContiguous() ? nhwc : nhwc.contiguous();
}

/** Wraps NHWC integers as the NCHW quint8 QTensor they represent. */
export function fromChannelsLast(nhwc: Tensor, scale: number, zeroPoint: number): QTensor {
  return QTensor.fromIntRepr(nhwc.permute([0, 3, 1, 2]), 'quint8', { kind: 'per_tensor', scale, zeroPoint });
}

/**
 * y = requantize(conv2d(x, w) + bias) as ONNX's QLinearConv (and PyTorch's
 * QNNPACK engine): per-tensor quint8 x, per-channel symmetric qint8 w, the
 * float bias rounded to int32 at scale x_scale * w_scale[o] and added to the
 * int32 accumulator, output clamp(round_half_even(f32(acc + bias_int[o]) *
 * m[o]) + outZeroPoint) with the float32 multiplier of requant.ts; ReLU
 * clamps at the zero point. These are onnxruntime's integers for the
 * exported QDQ model, bit for bit.
 */
export function quantizedConv2d(
  x: QTensor, w: QConvWeight, bias: readonly number[] | null, g: QConvGeometry,
  out: { scale: number; zeroPoint: number; relu?: boolean },
): QTensor {
  const op = 'quantizedConv2d';
  if (x.dtype !== 'quint8' || x.qscheme() !== 'per_tensor_affine') throw new KilnError(op, `expected a per-tensor quint8 input, got ${x.dtype} ${x.qscheme()}`);
  if (x.dim() !== 4) throw new ShapeError(op, `expected a 4-D input [N, C, H, W], got ${fmtShape(x.shape)}`);
  const [N, C, H, W] = x.shape as [number, number, number, number];
  const [kh, kw] = g.kernel;
  if (C * kh * kw !== w.k) throw new ShapeError(op, `input has ${C} channels but the weight expects ${w.k / (kh * kw)}`);
  const [sh, sw] = g.stride;
  const [ph, pw] = g.padding;
  const [dh, dw] = g.dilation;
  const oH = Math.floor((H + 2 * ph - dh * (kh - 1) - 1) / sh) + 1;
  const oW = Math.floor((W + 2 * pw - dw * (kw - 1) - 1) / sw) + 1;
  if (oH < 1 || oW < 1) throw new ShapeError(op, `input ${fmtShape(x.shape)} is too small for kernel ${fmtShape(g.kernel)}`);
  const sx = x.qScale();
  const zx = x.qZeroPoint();
  const O = w.packed.shape[0]!;
  const dev = x.device;
  const mult = requantMultipliers(sx, w.scales, out.scale);
  const biasInts = bias ? quantizeBias(bias, sx, w.scales) : null;
  if (quantizedConvOverride.path !== 'im2col') {
    const ints = noGrad(() => tidy(() => {
      // Channels padded to whole u32 words (the 3-channel stem): the input with its zero point,
      // the weight with zeros, so the extra channel adds (zp - zp) * 0 and colSum is unchanged.
      const c4 = Math.ceil(C / 4) * 4;
      let xs = channelsLast(x);
      let w4 = w.packed;
      if (c4 !== C) {
        xs = pad(xs, [0, c4 - C], zx);
        w4 = pad(w.packed.slice(1, 0, w.k).contiguous().reshape([O, kh, kw, C]), [0, c4 - C]);
      }
      const y = empty([N, oH, oW, O], 'uint8', xs._storage.backend);
      const wv = w4.reshape([O, kh, kw, c4]).permute([0, 3, 1, 2]);
      const aZeroPoint = tensor([zx], { dtype: 'int32', device: dev });
      const scale = tensor(mult, { dtype: 'float32', device: dev });
      const b = biasInts ? tensor(biasInts, { dtype: 'int32', device: dev }) : undefined;
      xs._storage.backend.conv2d(xs.permute([0, 3, 1, 2])._view(), wv._view(), y.permute([0, 3, 1, 2])._view(),
        { stride: g.stride, padding: g.padding, dilation: g.dilation, groups: 1 },
        { relu: out.relu, quant: { aZeroPoint: aZeroPoint._view(), bColSum: w.colSum._view(), scale: scale._view(), bias: b?._view(), outZeroPoint: out.zeroPoint } });
      return y;
    }));
    return fromChannelsLast(ints, out.scale, out.zeroPoint);
  }
  const ints = noGrad(() => tidy(() => {
    const xp = ph || pw ? pad(channelsLast(x), [0, 0, pw, pw, ph, ph], zx) : channelsLast(x);
    const taps: Tensor[] = [];
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        taps.push(xp.slice(1, i * dh, i * dh + sh * (oH - 1) + 1, sh).slice(2, j * dw, j * dw + sw * (oW - 1) + 1, sw));
      }
    }
    let cols = (taps.length === 1 ? taps[0]!.contiguous() : stack(taps, 3)).reshape([N * oH * oW, w.k]);
    const kp = w.packed.shape[1]!;
    if (kp !== w.k) cols = pad(cols, [0, kp - w.k]);
    const y = quantizedMatmul(cols, w.packed, {
      aZeroPoint: tensor([zx], { dtype: 'int32', device: dev }),
      bColSum: w.colSum,
      scale: tensor(mult, { dtype: 'float32', device: dev }),
      // The int32 bias joins the accumulator before the multiplier (QLinearConv's rule).
      bias: biasInts ? tensor(biasInts, { dtype: 'int32', device: dev }) : undefined,
      out: { dtype: 'uint8', zeroPoint: out.zeroPoint },
      relu: out.relu,
    });
    return y.reshape([N, oH, oW, O]);
  }));
  return fromChannelsLast(ints, out.scale, out.zeroPoint);
}
