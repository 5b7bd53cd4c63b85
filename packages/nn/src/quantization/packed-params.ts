/**
 * LinearPackedParams: a quantized Linear's int8 weight, its quantization
 * parameters and float bias, as the state-dict submodule `_packed_params`
 * (PyTorch's name). State-dict keys (documented naming, one tensor each
 * where PyTorch stores one opaque tuple):
 *
 *   <layer>._packed_params.weight             int8 [out, in]   integer weight
 *   <layer>._packed_params.weight_scale       float32 [1] per-tensor, [out] per-channel
 *   <layer>._packed_params.weight_zero_point  int32, same shape (always 0: symmetric)
 *   <layer>._packed_params.bias               float32 [out] (absent without bias)
 *
 * What the int8 GEMM reads is derived from these and kept as non-persistent
 * buffers: the weight zero-padded to a multiple of 4 columns, its row sums
 * and the per-column scale vector.
 */
import { KilnError, QTensor, fromArray, full, keep, noGrad, pad, tidy, type Tensor } from '@kiln/core';
import { Module } from '../module.js';
import { loadOwnEntries } from '../state-dict.js';

/** Host copy of a packed weight's quantization parameters. */
export interface WeightQParams {
  /** Weight scales (doubles of the float32 values). */
  scales: number[];
  /** Weight zero points (0). */
  zeroPoints: number[];
  /** 0 for per-channel (output channels), -1 for per-tensor. */
  axis: number;
}

/** The int8 weight, its parameters and the bias of a quantized Linear; see the file comment for its state-dict keys. */
export class LinearPackedParams extends Module {
  /** int8 [out, in]: the integer weight. */
  declare weight: Tensor;
  /** float32 [1] or [out]: the weight scale(s). */
  declare weight_scale: Tensor;
  /** int32 [1] or [out]: the weight zero point(s), always 0. */
  declare weight_zero_point: Tensor;
  /** float32 [out], or null. */
  declare bias: Tensor | null;
  /** @internal int8 [out, in rounded up to 4]: what the GEMM reads. */
  declare _packed: Tensor;
  /** @internal int32 [out]: row sums of the weight. */
  declare _col_sum: Tensor;
  /** @internal float32 [out]: the per-output-column weight scale. */
  declare _scale_vec: Tensor;
  /** The weight's parameters on the host (what qScale()/qPerChannelScales() report). */
  qparams: WeightQParams;

  /** Wraps an int8 weight (taken over), its parameters and a float bias (taken over). */
  constructor(weight: Tensor, qparams: WeightQParams, bias: Tensor | null) {
    super();
    const op = 'LinearPackedParams';
    if (weight.dtype !== 'int8' || weight.dim() !== 2) throw new KilnError(op, `expected an int8 [out, in] weight, got ${weight.dtype} [${weight.shape.join(', ')}]`);
    if (qparams.zeroPoints.some((z) => z !== 0)) throw new KilnError(op, 'expected weight zero points of 0 (a symmetric qscheme): the int8 GEMM takes unshifted weights');
    this.qparams = qparams;
    const device = weight.device;
    this.registerBuffer('weight', weight);
    this.registerBuffer('weight_scale', fromArray(qparams.scales, [qparams.scales.length], { device }));
    this.registerBuffer('weight_zero_point', fromArray(qparams.zeroPoints, [qparams.zeroPoints.length], { dtype: 'int32', device }));
    this.registerBuffer('bias', bias);
    this.derive();
  }

  /** Rebuilds the GEMM's operands from the persistent state. */
  private derive(): void {
    const [N, K] = this.weight.shape as [number, number];
    const Kp = Math.ceil(K / 4) * 4;
    for (const name of ['_packed', '_col_sum', '_scale_vec']) this._buffers.get(name)?.dispose();
    const d = noGrad(() => tidy(() => {
      const packed = Kp === K ? this.weight.alias() : pad(this.weight, [0, Kp - K]);
      const colSum = this.weight.to('int32').sum(1).to('int32');
      const scaleVec = this.qparams.axis < 0 ? full([N], this.qparams.scales[0]!, { device: this.weight.device }) : this.weight_scale.alias();
      return [keep(packed), keep(colSum), keep(scaleVec)];
    }));
    this.registerBuffer('_packed', d[0]!, { persistent: false });
    this.registerBuffer('_col_sum', d[1]!, { persistent: false });
    this.registerBuffer('_scale_vec', d[2]!, { persistent: false });
  }

  /** The weight as a quantized tensor (qint8, per-tensor or per-channel affine, as PyTorch labels it). */
  weightQTensor(): QTensor {
    const p = this.qparams;
    const params = p.axis < 0
      ? { kind: 'per_tensor' as const, scale: p.scales[0]!, zeroPoint: p.zeroPoints[0]! }
      : { kind: 'per_channel' as const, scales: p.scales, zeroPoints: p.zeroPoints, axis: p.axis };
    return QTensor.fromIntRepr(this.weight.alias(), 'qint8', params);
  }

  override _loadFromStateDict(sd: Map<string, Tensor>, prefix: string, missing: string[], unexpected: string[], errors: string[]): void {
    const before = errors.length + missing.length;
    loadOwnEntries(this, sd, prefix, missing, unexpected, errors);
    if (errors.length + missing.length !== before) return;
    const read = (key: string): number[] => {
      const t = sd.get(prefix + key)!;
      try {
        return Array.from(t.dataSync());
      } catch {
        throw new KilnError('loadStateDict', `${prefix}${key}: quantization parameters must be read synchronously; load the state dict on the cpu backend`);
      }
    };
    const scales = read('weight_scale');
    const zeroPoints = read('weight_zero_point');
    if (zeroPoints.some((z) => z !== 0)) {
      errors.push(`${prefix}weight_zero_point: expected zero points of 0 (symmetric int8 weights)`);
      return;
    }
    this.qparams = { scales, zeroPoints, axis: this.qparams.axis };
    this.derive();
  }
}
