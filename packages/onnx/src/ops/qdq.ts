// Statically quantized modules (convert()'s QuantizedConv2d, QuantizedLinear,
// QFunctional, quantized pooling, Quantize / DeQuantize) in QDQ form: every
// quantized value is a uint8 tensor; each op dequantizes its inputs
// (DequantizeLinear with the input's scale and zero point), runs the float
// op, and quantizes its output. Weights are int8 initializers with
// per-channel scales (DequantizeLinear axis 0, zero points 0), biases the
// int32 integers Kiln's layers add (core's quantizeBias, at scale
// x_scale * w_scale[o]), as torch.onnx.export writes a quantized model and as
// onnxruntime's QDQ fusion expects to turn each conv / fc group into
// QLinearConv / QGemm, whose requantization is Kiln's (requant.ts).
//
// The graph describes what Kiln computes, so onnxruntime's integers are
// Kiln's. Where Kiln's quantizer multiplies by the float32 reciprocal of the
// scale (the input Quantize and the residual add, PyTorch's quantizer) and
// QuantizeLinear divides by the scale, the export writes that product (Mul by
// 1 / scale) and a QuantizeLinear of scale 1, which only rounds, adds the zero
// point and saturates: x / 1 is x. The residual add then runs as float ops in
// onnxruntime instead of its QLinearAdd kernel, whose fused arithmetic
// (fma of scale ratios, per CPU kind) is not the ONNX graph's.
import { biasScales, invScale, quantizeBias } from '@kiln/core';
import type { Emitter, EmitContext } from '../emit.js';
import type { GraphNode } from '../graph.js';
import { tensorInput } from './util.js';

interface QParams { scale: number; zeroPoint: number }

const pair = (v: unknown, dflt: [number, number]): [number, number] =>
  v === undefined || v === null ? dflt : typeof v === 'number' ? [v, v] : [(v as number[])[0]!, (v as number[])[1]!];

/** The scale and zero point of quantized input `i`, as the module's trace seam recorded them. */
function inputQ(ctx: EmitContext, n: GraphNode, i: number): QParams {
  const q = (n.attrs.inputQParams as (QParams | null)[] | undefined)?.[i];
  if (!q) ctx.fail(`input ${i} is not a recorded quantized value`);
  return q!;
}

/** DequantizeLinear of per-tensor uint8 input `i`. */
function dq(ctx: EmitContext, n: GraphNode, i: number): string {
  const q = inputQ(ctx, n, i);
  return ctx.emit('DequantizeLinear', [ctx.input(i), ctx.constant([q.scale], 'float32', []), ctx.constant([q.zeroPoint], 'uint8', [])])[0]!;
}

/** QuantizeLinear of `y` to the node's uint8 output (what an int8 conv / fc / pooling group ends in). */
function q(ctx: EmitContext, y: string, p: QParams): void {
  ctx.emit('QuantizeLinear', [y, ctx.constant([p.scale], 'float32', []), ctx.constant([p.zeroPoint], 'uint8', [])], {}, [ctx.out()]);
}

/**
 * Kiln's quantizer (quantizeInts): clamp(round_half_even(y * f32(1 / scale)) + zp), as
 * Mul by the float32 reciprocal and a QuantizeLinear of scale 1 to the node's uint8 output.
 */
function qByReciprocal(ctx: EmitContext, y: string, p: QParams): void {
  const scaled = ctx.emit('Mul', [y, ctx.constant([invScale(p.scale)], 'float32', [])])[0]!;
  ctx.emit('QuantizeLinear', [scaled, ctx.constant([1], 'float32', []), ctx.constant([p.zeroPoint], 'uint8', [])], {}, [ctx.out()]);
}

/** The dequantized weight (int8 input 1, per-output-channel scales) and int32 bias of a quantized conv / linear. */
function weightAndBias(ctx: EmitContext, n: GraphNode): string[] {
  const w = tensorInput(n, 1);
  const scales = n.attrs.weightScales as number[];
  const O = w.shape[0]!;
  if (scales.length !== O) ctx.fail(`expected ${O} weight scales, got ${scales.length}`);
  const zeros = new Array<number>(O).fill(0);
  const dqw = ctx.emit('DequantizeLinear', [ctx.input(1), ctx.constant(scales, 'float32', [O]), ctx.constant(zeros, 'int8', [O])], { axis: 0 })[0]!;
  const bias = n.attrs.bias as number[] | null;
  if (!bias) return [dqw];
  const sx = inputQ(ctx, n, 0).scale;
  const bScales = biasScales(sx, scales);
  const ints = quantizeBias(bias, sx, scales);
  const dqb = ctx.emit('DequantizeLinear', [ctx.constant(ints, 'int32', [O]), ctx.constant(bScales, 'float32', [O]), ctx.constant(zeros, 'int32', [O])], { axis: 0 })[0]!;
  return [dqw, dqb];
}

const outQ = (n: GraphNode): QParams => ({ scale: n.attrs.scale, zeroPoint: n.attrs.zeroPoint });

const quantize: Emitter = (ctx, n) => {
  if (n.attrs.dtype !== 'quint8') ctx.fail(`only quint8 activations export, got ${n.attrs.dtype}`);
  qByReciprocal(ctx, ctx.input(0), outQ(n));
};

const dequantize: Emitter = (ctx, n) => {
  const p = inputQ(ctx, n, 0);
  ctx.emit('DequantizeLinear', [ctx.input(0), ctx.constant([p.scale], 'float32', []), ctx.constant([p.zeroPoint], 'uint8', [])], {}, [ctx.out()]);
};

const quantizedConv2d: Emitter = (ctx, n) => {
  const w = tensorInput(n, 1);
  const a = n.attrs;
  const [ph, pw] = pair(a.padding, [0, 0]);
  let y = ctx.emit('Conv', [dq(ctx, n, 0), ...weightAndBias(ctx, n)], {
    kernel_shape: w.shape.slice(2),
    strides: pair(a.stride, [1, 1]),
    pads: [ph, pw, ph, pw],
    dilations: pair(a.dilation, [1, 1]),
    group: 1,
  })[0]!;
  if (a.relu) y = ctx.emit('Relu', [y])[0]!;
  q(ctx, y, outQ(n));
};

const quantizedLinear: Emitter = (ctx, n) => {
  if (tensorInput(n, 0).shape.length !== 2) ctx.fail('expected a 2-D input');
  let y = ctx.emit('Gemm', [dq(ctx, n, 0), ...weightAndBias(ctx, n)], { alpha: { f: 1 }, beta: { f: 1 }, transB: 1 })[0]!;
  if (n.attrs.relu) y = ctx.emit('Relu', [y])[0]!;
  q(ctx, y, outQ(n));
};

const quantizedAdd: Emitter = (ctx, n) => {
  let y = ctx.emit('Add', [dq(ctx, n, 0), dq(ctx, n, 1)])[0]!;
  if (n.attrs.relu) y = ctx.emit('Relu', [y])[0]!;
  qByReciprocal(ctx, y, outQ(n));
};

const quantizedMaxPool2d: Emitter = (ctx, n) => {
  const k = pair(n.attrs.kernelSize, [1, 1]);
  const [ph, pw] = pair(n.attrs.padding, [0, 0]);
  const y = ctx.emit('MaxPool', [dq(ctx, n, 0)], { kernel_shape: k, strides: pair(n.attrs.stride, k), pads: [ph, pw, ph, pw] })[0]!;
  q(ctx, y, inputQ(ctx, n, 0));
};

const quantizedAdaptiveAvgPool2d: Emitter = (ctx, n) => {
  const x = tensorInput(n, 0);
  const [H, W] = x.shape.slice(2) as [number, number];
  const [oH, oW] = pair(n.attrs.outputSize, [1, 1]);
  let y: string;
  if (oH === 1 && oW === 1) y = ctx.emit('GlobalAveragePool', [dq(ctx, n, 0)])[0]!;
  else {
    if (H % oH !== 0 || W % oW !== 0) ctx.fail(`adaptive pooling from ${H}x${W} to ${oH}x${oW} has unequal windows, which ONNX's AveragePool cannot express`);
    const k = [H / oH, W / oW];
    y = ctx.emit('AveragePool', [dq(ctx, n, 0)], { kernel_shape: k, strides: k })[0]!;
  }
  q(ctx, y, inputQ(ctx, n, 0));
};

const quantizedFlatten: Emitter = (ctx, n) => {
  // Integers move, their scale and zero point stay: a Flatten of the uint8 tensor itself.
  const x = tensorInput(n, 0);
  if (x.dyn.slice(1).some(Boolean)) ctx.fail('flattening a dynamic non-batch axis is not supported');
  ctx.emit('Flatten', [ctx.input(0)], { axis: 1 }, [ctx.out()]);
};

/** Mappings of the statically quantized modules' ops (QDQ form). */
export const QDQ_EMITTERS: Record<string, Emitter> = {
  quantize,
  dequantize,
  quantizedConv2d,
  quantizedLinear,
  quantizedAdd,
  quantizedMaxPool2d,
  quantizedAdaptiveAvgPool2d,
  quantizedFlatten,
};
