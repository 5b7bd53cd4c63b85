/**
 * The tracing seam of the quantized modules: each one's forward reports
 * itself to core's tracer as ONE op with its quantization parameters
 * (`quantizedConv2d` with its weight integers, per-channel scales, float
 * bias, output scale and zero point), never as the im2col / integer GEMM /
 * requantize pieces it runs, so a faster kernel underneath changes nothing
 * in a trace. A quantized value is traced as its integer tensor (the
 * QTensor's `_int`, uint8 in NCHW order); the scale and zero point of each
 * quantized input travel in the op's `inputQParams` attribute. When no
 * tracer is active this is one check.
 */
import { isQTensor, isTracing, tracedAs, type QTensor, type Tensor } from '@kiln/core';

/** Scale and zero point of a per-tensor quantized input, as a traced op's `inputQParams` lists them (null for a float input). */
export interface TracedQParams {
  /** The input's scale. */
  scale: number;
  /** The input's zero point. */
  zeroPoint: number;
}

/**
 * Runs `fn` (a quantized module's forward) and, while tracing, reports it as
 * the single op `op` on `inputs` (QTensors as their integers) with `attrs`
 * plus `inputQParams`.
 */
export function tracedQuantized<T extends QTensor | Tensor>(
  op: string, inputs: readonly (QTensor | Tensor | null)[], attrs: Record<string, unknown>, fn: () => T,
): T {
  if (!isTracing()) return fn();
  let result: T | undefined;
  const inputQParams: (TracedQParams | null)[] = inputs.map((x) => (isQTensor(x) ? { scale: x.qScale(), zeroPoint: x.qZeroPoint() } : null));
  tracedAs(op, inputs.map((x) => (isQTensor(x) ? x._int : x)), { ...attrs, inputQParams }, () => {
    result = fn();
    return isQTensor(result) ? result._int : (result as Tensor);
  });
  return result!;
}
