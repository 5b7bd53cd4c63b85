/**
 * The requantization arithmetic of an int8 conv / linear layer, as ONNX's
 * QLinearConv / QGemm (and PyTorch's QNNPACK engine) define it and as
 * onnxruntime computes it: the bias is an int32 at scale x_scale * w_scale[o]
 * added to the int32 accumulator, and y = clamp(round_half_even(f32(acc +
 * bias) * m[o]) + y_zero_point) with the float32 multiplier
 * m[o] = (x_scale * w_scale[o]) / y_scale evaluated in float32 from the
 * float32 scales an exported model stores. Kiln's layers and its ONNX export
 * both take the integers and multipliers from here, so the file describes
 * exactly what Kiln computes.
 */

import { KilnError } from '../errors.js';

const f32 = Math.fround;

/** Round half to even (nearbyint under the default rounding mode). */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** The float32 scale of the int32 bias of output channel o: f32(f32(xScale) * f32(wScale[o])). */
export function biasScales(xScale: number, wScales: readonly number[]): number[] {
  return wScales.map((s) => f32(f32(xScale) * f32(s)));
}

/**
 * The per-output-channel float32 requantization multipliers
 * f32(f32(f32(xScale) * f32(wScale[o])) / f32(yScale)), onnxruntime's
 * `x_scale * w_scale[o] / y_scale` on float32 values.
 */
export function requantMultipliers(xScale: number, wScales: readonly number[], yScale: number): number[] {
  return biasScales(xScale, wScales).map((s) => f32(s / f32(yScale)));
}

/**
 * The int32 bias of a quantized conv / linear: round_half_even(f32(b[o]) /
 * biasScales[o]) (the quotient in double), saturated to int32. The exported
 * model stores these integers, so any fixed rule works; this one is the
 * nearest integer.
 */
export function quantizeBias(bias: readonly number[], xScale: number, wScales: readonly number[]): number[] {
  if (bias.length !== wScales.length) throw new KilnError('quantizeBias', `expected ${wScales.length} bias values (one per weight scale), got ${bias.length}`);
  const scales = biasScales(xScale, wScales);
  return bias.map((b, o) => Math.max(-2147483648, Math.min(2147483647, roundHalfEven(f32(b) / scales[o]!))));
}
