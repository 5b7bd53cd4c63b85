/**
 * The dynamically quantized Linear (torch.ao.nn.quantized.dynamic.Linear),
 * with PyTorch 1.13's x86 semantics (fbgemm, and onednn, which the
 * reference generator runs): int8 weights fixed at conversion; per call the
 * input's min/max (widened to include 0) choose a quint8 scale and zero
 * point over 0..127 (reduce_range), the input is quantized, multiplied in
 * int32 and the output is float32: acc * (input_scale * weight_scale) + bias.
 * Everything runs on the device: the parameters are computed by tensor ops,
 * so forward stays synchronous on WebGPU.
 */
import { KilnError, isQTensor, noGrad, pad, quantizeInts, quantizedMatmul, tidy, type QTensor, type Tensor } from '@kiln/core';
import { Module } from '../module.js';
import { LinearPackedParams, type WeightQParams } from './packed-params.js';
import { chooseQuantizationParams, quantRange } from './qparams.js';

/** A Linear layer with int8 weights and dynamically quantized uint8 activations; forward takes and returns float32. */
export class DynamicQuantizedLinear extends Module {
  /** Size of each input sample's last dim. */
  readonly inFeatures: number;
  /** Size of each output sample's last dim. */
  readonly outFeatures: number;
  /** The weight dtype (PyTorch's only int8 choice). */
  readonly dtype = 'qint8' as const;
  /** Activations use 0..127 (one bit less), as PyTorch's x86 engines; always true in PyTorch 1.13 (version 4). */
  readonly reduceRange: boolean;
  /** The int8 weight, its parameters and the bias (state-dict prefix `_packed_params.`). */
  declare _packed_params: LinearPackedParams;

  /** From an int8 weight [out, in] (taken over), its parameters, and a float bias (taken over). */
  constructor(weight: Tensor, qparams: WeightQParams, bias: Tensor | null, opts: { reduceRange?: boolean } = {}) {
    super();
    this.outFeatures = weight.shape[0]!;
    this.inFeatures = weight.shape[1]!;
    this.reduceRange = opts.reduceRange ?? true;
    this._packed_params = new LinearPackedParams(weight, qparams, bias);
  }

  /** The quantized weight (qint8), as PyTorch's `weight()`: intRepr(), qScale(), qZeroPoint(). Dispose it when done. */
  weight(): QTensor {
    return this._packed_params.weightQTensor();
  }

  /** The float bias (or null), as PyTorch's `bias()`. */
  bias(): Tensor | null {
    return this._packed_params.bias;
  }

  override forward(x: Tensor): Tensor {
    if (isQTensor(x)) throw new KilnError('DynamicQuantizedLinear', 'expected a float32 input (dynamic quantization quantizes it itself), got a QTensor');
    if (x.dtype !== 'float32') throw new KilnError('DynamicQuantizedLinear', `expected a float32 input, got ${x.dtype}`);
    const K = this.inFeatures;
    if (x.dim() < 1 || x.shape[x.dim() - 1] !== K) {
      throw new KilnError('DynamicQuantizedLinear', `expected input [..., ${K}], got [${x.shape.join(', ')}]`);
    }
    const p = this._packed_params;
    return noGrad(() => tidy(() => {
      const lead = x.shape.slice(0, -1);
      const x2 = x.reshape([-1, K]);
      const [qmin, qmax] = quantRange('quint8', this.reduceRange);
      const { scale, inv, zeroPoint } = chooseQuantizationParams(x2.min().reshape([1]), x2.max().reshape([1]), qmin, qmax);
      let q = quantizeInts(x2, inv, zeroPoint, 'quint8');
      const Kp = p._packed.shape[1]!;
      if (Kp !== K) q = pad(q, [0, Kp - K]);
      const y = quantizedMatmul(q, p._packed, {
        aZeroPoint: zeroPoint.to('int32'),
        bColSum: p._col_sum,
        scale: p._scale_vec.mul(scale),
        bias: p.bias ?? undefined,
        out: 'float32',
      });
      return y.reshape([...lead, this.outFeatures]);
    }));
  }

  override extraRepr(): string {
    const w = this._packed_params.qparams;
    const scheme = w.axis < 0 ? 'per_tensor_affine' : 'per_channel_affine';
    return `in_features=${this.inFeatures}, out_features=${this.outFeatures}, dtype=torch.qint8, qscheme=torch.${scheme}`;
  }

  /** PyTorch's print, which hides the packed-params submodule: `DynamicQuantizedLinear(in_features=..., ...)`. */
  override toString(): string {
    return `${this._getName()}(${this.extraRepr()})`;
  }
}
