/**
 * Quantization-parameter rules, as device tensor ops (so dynamic
 * quantization needs no readback and runs inside a synchronous forward):
 * PyTorch's C++ ChooseQuantizationParams (dynamic activations) and its
 * observers' _calculate_qparams (weights and static activations).
 */
import { where, type QDType, type Tensor } from '@kiln/core';

/** PyTorch's SMALL_SCALE_THRESHOLD (quant_utils.h): scales below it are raised to it. */
export const SMALL_SCALE_THRESHOLD = Math.fround(6.1e-5);

/** torch.finfo(torch.float32).eps: the observers' smallest scale. */
export const FLOAT32_EPS = 2 ** -23;

/** Quantized integer range of `dtype`, halved (one bit less) with `reduceRange` as PyTorch's observers do. */
export function quantRange(dtype: QDType, reduceRange: boolean): [number, number] {
  if (dtype === 'quint8') return reduceRange ? [0, 127] : [0, 255];
  if (dtype === 'qint8') return reduceRange ? [-64, 63] : [-128, 127];
  return [-(2 ** 31), 2 ** 31 - 1];
}

/**
 * (hi - lo) / d for float32 tensors hi, lo, nearly as if computed in double
 * and rounded once (PyTorch computes `(double(max) - min) / (qmax - qmin)`):
 * the difference is split into its float32 value and exact rounding error
 * (two-sum), and the quotient gets one correction step from the remainder.
 */
function diffOver(hi: Tensor, lo: Tensor, d: number): Tensor {
  const s = hi.sub(lo);
  const bb = s.sub(hi);
  const err = hi.sub(s.sub(bb)).add(lo.neg().sub(bb));
  const q = s.div(d);
  // q * d exactly, as qh * d + ql * d: Veltkamp's split leaves each half 12 bits, d has at most 9.
  const c = q.mul(4097);
  const qh = c.sub(c.sub(q));
  const ql = q.sub(qh);
  const rem = s.sub(qh.mul(d)).sub(ql.mul(d)).add(err);
  return q.add(rem.div(d));
}

/** Quantization parameters as device tensors. */
export interface TensorQParams {
  /** float32 scale(s). */
  scale: Tensor;
  /** int32 zero point(s) (integer-valued float32 in {@link DynamicQParams}). */
  zeroPoint: Tensor;
}

/** A dynamic activation's parameters: float32 [1] scale, its float32 reciprocal, integer-valued float32 [1] zero point. */
export interface DynamicQParams extends TensorQParams {
  /** 1 / scale in float32, what the quantizer multiplies by. */
  inv: Tensor;
}

/**
 * PyTorch's ChooseQuantizationParams(min, max, qmin, qmax) for a dynamic
 * activation (preserve_sparsity and power-of-two scales off): the range is
 * widened to include 0, a zero or infinite-reciprocal scale becomes 0.1, a
 * scale below {@link SMALL_SCALE_THRESHOLD} is raised to it (stretching
 * min/max), and the zero point comes from whichever end adds the smaller
 * error, clamped, rounded half to even. `min`/`max` are float32 [1]
 * tensors; returns float32 [1] scale, its float32 reciprocal and the
 * integer-valued float32 [1] zero point. Inside `tidy`.
 */
export function chooseQuantizationParams(min: Tensor, max: Tensor, qmin: number, qmax: number): DynamicQParams {
  let lo = min.minimum(0);
  let hi = max.maximum(0);
  const n = qmax - qmin;
  let scale = diffOver(hi, lo, n);
  scale = where(scale.eq(0).logicalOr(scale.reciprocal().isfinite().logicalNot()), Math.fround(0.1), scale);
  const small = scale.lt(SMALL_SCALE_THRESHOLD);
  const amplifier = scale.reciprocal().mul(SMALL_SCALE_THRESHOLD);
  const edge = Math.fround(SMALL_SCALE_THRESHOLD * n);
  const loZero = lo.eq(0);
  const hiZero = hi.eq(0);
  const newHi = where(loZero, edge, where(hiZero, hi, hi.mul(amplifier)));
  const newLo = where(loZero, lo, where(hiZero, -edge, lo.mul(amplifier)));
  hi = where(small, newHi, hi);
  lo = where(small, newLo, lo);
  scale = where(small, SMALL_SCALE_THRESHOLD, scale);
  const loOverS = lo.div(scale);
  const hiOverS = hi.div(scale);
  const fromMin = loOverS.neg().add(qmin);
  const fromMax = hiOverS.neg().add(qmax);
  const errMin = loOverS.abs().neg().add(Math.abs(qmin));
  const errMax = hiOverS.abs().neg().add(Math.abs(qmax));
  const initial = where(errMin.lt(errMax), fromMin, fromMax);
  const zeroPoint = initial.clamp(qmin, qmax).round();
  return { scale, inv: scale.reciprocal(), zeroPoint };
}

/**
 * PyTorch observers' _calculate_qparams on float32 tensors min/max (any
 * shape: one entry per tensor or per channel): symmetric schemes take
 * scale = max(|min|, |max|) / ((qmax - qmin) / 2) and zero point 0 (128
 * for quint8, or the middle of a custom range); affine ones scale =
 * (max - min) / (qmax - qmin), zero point qmin - round(min / scale),
 * clamped. Scales are at least float32 eps. Returns float32 scale and
 * int32 zero point tensors. Inside `tidy`.
 */
export function calculateQParams(
  min: Tensor, max: Tensor, qmin: number, qmax: number, symmetric: boolean, dtype: QDType, customRange: boolean,
): TensorQParams {
  const minNeg = min.minimum(0);
  const maxPos = max.maximum(0);
  if (symmetric) {
    const m = minNeg.neg().maximum(maxPos);
    const scale = m.div((qmax - qmin) / 2).maximum(FLOAT32_EPS);
    const zp = dtype === 'quint8' ? (customRange ? Math.floor((qmin + qmax) / 2) : 128) : 0;
    return { scale, zeroPoint: scale.mul(0).add(zp).to('int32') };
  }
  const scale = maxPos.sub(minNeg).div(qmax - qmin).maximum(FLOAT32_EPS);
  const zeroPoint = minNeg.div(scale).round().to('int32').neg().add(qmin).clamp(qmin, qmax);
  return { scale, zeroPoint };
}
