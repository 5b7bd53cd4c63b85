/**
 * quantizePerTensor / quantizePerChannel / dequantize, as
 * torch.quantize_per_tensor, torch.quantize_per_channel and
 * Tensor.dequantize. Composed from elementwise primitives, so both backends
 * compute them identically and nothing here needs a kernel of its own.
 *
 * PyTorch's CPU quantizer (quantize_val, and its AVX2 loop) computes
 * q = clamp(nearbyint(x * inv_scale) + zero_point, qmin, qmax) with
 * inv_scale = 1.0f / (float)scale in float32: a product, not a division,
 * rounded half to even. The same steps here: mul by the float32 reciprocal,
 * round (half to even), add, clamp, cast.
 */
import { DTypeError, KilnError, ShapeError } from '../errors.js';
import type { Tensor } from '../tensor.js';
import { tensor } from '../ops/creation.js';
import { where } from '../ops/binary.js';
import { tidy } from '../memory.js';
import { noGrad } from '../autograd/grad-mode.js';
import { checkQDtype, intDtypeOf, qRange, QTensor, type QDType } from './qtensor.js';

/** The float32 reciprocal PyTorch multiplies by: 1.0f / (float)scale. */
export function invScale(scale: number): number {
  return Math.fround(1 / Math.fround(scale));
}

/** The largest float32 below 2^31: float32 cannot hold int32's extremes, and casting 2^31 wraps. */
const F32_BELOW_2_31 = 2147483520;

function checkFloat(op: string, x: Tensor): void {
  if (!(x as Tensor | null)?._isKilnTensor) throw new KilnError(op, `expected a Tensor input, got ${typeof x}`);
  if (x.dtype !== 'float32') throw new DTypeError(op, `expected a float32 input, got ${x.dtype}`);
}

function checkZeroPoint(op: string, zp: number, dtype: QDType): void {
  const [lo, hi] = qRange(dtype);
  if (!Number.isInteger(zp) || zp < lo || zp > hi) throw new KilnError(op, `zero point must be an integer in [${lo}, ${hi}] for ${dtype}, got ${zp}`);
}

/**
 * Integers q = clamp(round(x * inv) + zp, qmin, qmax) of `dtype`'s storage
 * type. `inv` and `zp` are numbers or tensors broadcasting against x.
 * @internal shared by the quantizers and dynamic quantization.
 */
export function quantizeInts(x: Tensor, inv: number | Tensor, zp: number | Tensor, dtype: QDType): Tensor {
  const [lo, hi] = qRange(dtype);
  return noGrad(() => tidy(() => {
    const v = x.mul(inv).round().add(zp);
    if (dtype !== 'qint32') return v.clamp(lo, hi).to(intDtypeOf(dtype));
    // qint32: clamp inside float32's exact range, then saturate the ends as integers.
    const ints = v.clamp(-F32_BELOW_2_31, F32_BELOW_2_31).to('int32');
    return where(v.ge(2 ** 31), hi, where(v.le(-(2 ** 31)), lo, ints));
  }));
}

/**
 * Quantizes float32 `x` with one scale and zero point (torch.quantize_per_tensor):
 * q = clamp(round(x / scale) + zeroPoint) in `dtype`'s range, ties to even.
 */
export function quantizePerTensor(x: Tensor, scale: number, zeroPoint: number, dtype: QDType): QTensor {
  const op = 'quantizePerTensor';
  checkFloat(op, x);
  checkQDtype(op, dtype);
  checkZeroPoint(op, zeroPoint, dtype);
  if (!(scale > 0) || !Number.isFinite(scale)) throw new KilnError(op, `scale must be a positive finite number, got ${scale}`);
  const q = quantizeInts(x, invScale(scale), zeroPoint, dtype);
  return QTensor.fromIntRepr(q, dtype, { kind: 'per_tensor', scale, zeroPoint });
}

/** Host values of a scales / zero points argument: a number array, or a tensor on a backend with synchronous reads. */
function hostValues(op: string, what: string, v: readonly number[] | Tensor): number[] {
  if (Array.isArray(v)) return [...v];
  const t = v as Tensor;
  if (!t._isKilnTensor) throw new KilnError(op, `expected ${what} as a number array or a Tensor`);
  if (t.dim() !== 1) throw new ShapeError(op, `expected 1-D ${what}, got shape [${t.shape.join(', ')}]`);
  return Array.from(t.dataSync());
}

/** Broadcast shape putting `values` along `axis` of a rank-`rank` tensor. */
function alongAxis(values: number[], axis: number, rank: number, device: string): Tensor {
  const shape = Array.from({ length: rank }, (_, d) => (d === axis ? values.length : 1));
  return tensor(values, { dtype: 'float32', device }).reshape(shape);
}

/**
 * Quantizes float32 `x` with one scale and zero point per slice along `axis`
 * (torch.quantize_per_channel). `scales`/`zeroPoints` are number arrays or
 * 1-D tensors on the CPU backend.
 */
export function quantizePerChannel(
  x: Tensor, scales: readonly number[] | Tensor, zeroPoints: readonly number[] | Tensor, axis: number, dtype: QDType,
): QTensor {
  const op = 'quantizePerChannel';
  checkFloat(op, x);
  checkQDtype(op, dtype);
  const s = hostValues(op, 'scales', scales);
  const z = hostValues(op, 'zero points', zeroPoints);
  const d = axis < 0 ? axis + x.dim() : axis;
  if (d < 0 || d >= x.dim()) throw new KilnError(op, `axis ${axis} out of range for a tensor of rank ${x.dim()}`);
  if (s.length !== x.shape[d] || z.length !== x.shape[d]) {
    throw new ShapeError(op, `expected ${x.shape[d]} scales and zero points (size of axis ${d}), got ${s.length} and ${z.length}`);
  }
  z.forEach((zp) => checkZeroPoint(op, zp, dtype));
  s.forEach((sc) => {
    if (!(sc > 0) || !Number.isFinite(sc)) throw new KilnError(op, `every scale must be a positive finite number, got ${sc}`);
  });
  const q = tidy(() => {
    const inv = alongAxis(s.map(invScale), d, x.dim(), x.device);
    const zp = alongAxis(z, d, x.dim(), x.device);
    return quantizeInts(x, inv, zp, dtype);
  });
  return QTensor.fromIntRepr(q, dtype, { kind: 'per_channel', scales: s, zeroPoints: z, axis: d });
}

/** The float32 values (q - zeroPoint) * scale of a quantized tensor (Tensor.dequantize). */
export function dequantize(q: QTensor): Tensor {
  const p = q._params;
  return noGrad(() => tidy(() => {
    const ints = q._int.to('float32');
    if (p.kind === 'per_tensor') return ints.sub(p.zeroPoint).mul(Math.fround(p.scale));
    const scale = alongAxis(p.scales.map(Math.fround), p.axis, q.dim(), q.device);
    const zp = alongAxis([...p.zeroPoints], p.axis, q.dim(), q.device);
    return ints.sub(zp).mul(scale);
  }));
}
