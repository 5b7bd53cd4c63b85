/**
 * The quantized modules convert() puts in place of float ones (as
 * torch.ao.nn.quantized): they take and return quint8 QTensors. Convs,
 * Linear and the residual add requantize to the output scale / zero point
 * their observer chose; pooling keeps its input's.
 */
import {
  KilnError, adaptiveAvgPool2d, channelsLast, fromChannelsLast, invScale, isQTensor, maxPool2d, noGrad, packConvWeight,
  QTensor, pad, quantizeBias, quantizeInts, quantizedConv2d, quantizedMatmul, requantMultipliers, tensor, tidy,
  type QConvGeometry, type QConvWeight, type Tensor,
} from '@kiln/core';
import { Module } from '../../module.js';
import { pyFloat } from '../../repr.js';
import { tracedQuantized } from './trace.js';

function expectQ(op: string, x: unknown): QTensor {
  if (!isQTensor(x)) throw new KilnError(op, 'expected a quantized (QTensor) input: is a QuantStub missing before this layer?');
  return x;
}

/** Per-output-channel symmetric int8 weight: its integers [O, ...] and scales. */
export interface QuantizedWeight {
  /** int8 integers, output channels first. */
  ints: Tensor;
  /** Per-output-channel scales (zero points are 0). */
  scales: number[];
}

/** A quantized Conv2d, with ReLU fused when `relu` (torch's QuantizedConv2d / QuantizedConvReLU2d). */
export class QuantizedConv2d extends Module {
  /** @internal */ readonly _w: QConvWeight;
  /** Input channels. */
  readonly inChannels: number;
  /** Output channels. */
  readonly outChannels: number;

  /** Builds the layer from its quantized weight / observed output parameters. */
  constructor(
    weight: QuantizedWeight,
    /** The float bias per output channel, or null. */
    readonly biasValues: number[] | null,
    /** Kernel, stride, padding, dilation. */
    readonly geometry: QConvGeometry,
    /** Output scale. */
    readonly scale: number,
    /** Output zero point. */
    readonly zeroPoint: number,
    /** ReLU fused (QuantizedConvReLU2d). */
    readonly relu: boolean,
  ) {
    super();
    this._w = packConvWeight(weight.ints, weight.scales);
    this.outChannels = weight.ints.shape[0]!;
    this.inChannels = weight.ints.shape[1]!;
    this.registerBuffer('weight', weight.ints);
  }

  override forward(x: QTensor): QTensor {
    const q = expectQ(this._getName(), x);
    const g = this.geometry;
    return tracedQuantized('quantizedConv2d', [q, this._buffers.get('weight')!], {
      ...g, weightScales: this._w.scales, bias: this.biasValues, scale: this.scale, zeroPoint: this.zeroPoint, relu: this.relu,
    }, () => quantizedConv2d(q, this._w, this.biasValues, g, { scale: this.scale, zeroPoint: this.zeroPoint, relu: this.relu }));
  }

  override _getName(): string {
    return this.relu ? 'QuantizedConvReLU2d' : 'QuantizedConv2d';
  }

  override extraRepr(): string {
    const g = this.geometry;
    return `${this.inChannels}, ${this.outChannels}, kernel_size=(${g.kernel.join(', ')}), stride=(${g.stride.join(', ')}), scale=${pyFloat(this.scale)}, zero_point=${this.zeroPoint}, padding=(${g.padding.join(', ')})`;
  }

  override dispose(): void {
    this._w.packed.dispose();
    this._w.colSum.dispose();
    super.dispose();
  }
}

/** A statically quantized Linear: quint8 in, quint8 out (torch's QuantizedLinear). */
export class QuantizedLinear extends Module {
  /** @internal int8 [out, in rounded up to 4]. */
  declare _packed: Tensor;
  /** @internal int32 [out] row sums. */
  declare _col_sum: Tensor;
  /** Input features. */
  readonly inFeatures: number;
  /** Output features. */
  readonly outFeatures: number;

  /** Builds the layer from its quantized weight / observed output parameters. */
  constructor(
    weight: QuantizedWeight,
    /** The float bias per output feature, or null. */
    readonly biasValues: number[] | null,
    /** Output scale. */
    readonly scale: number,
    /** Output zero point. */
    readonly zeroPoint: number,
    /** ReLU fused. */
    readonly relu = false,
  ) {
    super();
    this.outFeatures = weight.ints.shape[0]!;
    this.inFeatures = weight.ints.shape[1]!;
    const w = packConvWeight(weight.ints.reshape([this.outFeatures, this.inFeatures, 1, 1]), weight.scales);
    this.registerBuffer('weight', weight.ints);
    this.registerBuffer('_packed', w.packed, { persistent: false });
    this.registerBuffer('_col_sum', w.colSum, { persistent: false });
    this.scales = weight.scales;
  }

  /** Per-output-channel weight scales. */
  readonly scales: number[];

  override forward(x: QTensor): QTensor {
    const q = expectQ('QuantizedLinear', x);
    if (q.dim() !== 2 || q.shape[1] !== this.inFeatures) throw new KilnError('QuantizedLinear', `expected input [N, ${this.inFeatures}], got [${q.shape.join(', ')}]`);
    return tracedQuantized('quantizedLinear', [q, this._buffers.get('weight')!], {
      weightScales: this.scales, bias: this.biasValues, scale: this.scale, zeroPoint: this.zeroPoint, relu: this.relu,
    }, () => this.run(q));
  }

  private run(q: QTensor): QTensor {
    const sx = q.qScale();
    const ints = noGrad(() => tidy(() => {
      const kp = this._packed.shape[1]!;
      let a = q._int.isContiguous() ? q._int : q._int.contiguous();
      if (kp !== this.inFeatures) a = pad(a, [0, kp - this.inFeatures]);
      const dev = q.device;
      return quantizedMatmul(a, this._packed, {
        aZeroPoint: tensor([q.qZeroPoint()], { dtype: 'int32', device: dev }),
        bColSum: this._col_sum,
        // QGemm's rule, as the convs: int32 bias at scale sx * sw[o], float32 multiplier (core's requant.ts).
        scale: tensor(requantMultipliers(sx, this.scales, this.scale), { device: dev }),
        bias: this.biasValues ? tensor(quantizeBias(this.biasValues, sx, this.scales), { dtype: 'int32', device: dev }) : undefined,
        out: { dtype: 'uint8', zeroPoint: this.zeroPoint },
        relu: this.relu,
      });
    }));
    return QTensor.fromIntRepr(ints, 'quint8', { kind: 'per_tensor', scale: this.scale, zeroPoint: this.zeroPoint });
  }

  override extraRepr(): string {
    return `in_features=${this.inFeatures}, out_features=${this.outFeatures}, scale=${pyFloat(this.scale)}, zero_point=${this.zeroPoint}, qscheme=torch.per_channel_affine`;
  }
}

/** The quantized residual add, `addRelu` / `add` on QTensors with the observed output scale (torch's QFunctional). */
export class QFunctional extends Module {
  /** With the observed output scale and zero point. */
  constructor(
    /** Output scale. */
    readonly scale: number,
    /** Output zero point. */
    readonly zeroPoint: number,
  ) {
    super();
  }

  /** quantize(dequantize(a) + dequantize(b)) at this module's scale and zero point. */
  add(a: QTensor, b: QTensor): QTensor {
    return this.combine(a, b, false);
  }

  /** quantize(relu(dequantize(a) + dequantize(b))). */
  addRelu(a: QTensor, b: QTensor): QTensor {
    return this.combine(a, b, true);
  }

  private combine(a: QTensor, b: QTensor, relu: boolean): QTensor {
    const qa = expectQ('QFunctional', a);
    const qb = expectQ('QFunctional', b);
    return tracedQuantized('quantizedAdd', [qa, qb], { relu, scale: this.scale, zeroPoint: this.zeroPoint }, () => this.run(qa, qb, relu));
  }

  private run(qa: QTensor, qb: QTensor, relu: boolean): QTensor {
    const ints = noGrad(() => tidy(() => {
      // Each step one float32 rounding, as ONNX ops: DequantizeLinear ((q - zp) * scale, the
      // difference exact), Add, Relu, then the quantizer's product by 1 / scale, rounded half to
      // even. The export writes these very ops, so onnxruntime computes these integers.
      const fa = channelsLast(qa).to('float32').sub(qa.qZeroPoint()).mul(Math.fround(qa.qScale()));
      const fb = channelsLast(qb).to('float32').sub(qb.qZeroPoint()).mul(Math.fround(qb.qScale()));
      let c = fa.add(fb);
      if (relu) c = c.relu();
      return quantizeInts(c, invScale(this.scale), this.zeroPoint, 'quint8');
    }));
    return fromChannelsLast(ints, this.scale, this.zeroPoint);
  }

  override forward(): never {
    throw new KilnError('QFunctional', 'call add() or addRelu() instead of forward()');
  }

  override extraRepr(): string {
    return `scale=${pyFloat(this.scale)}, zero_point=${this.zeroPoint}`;
  }
}

/** Pooling applied to the integers (max is order-preserving; averages round to the nearest integer); scale and zero point carry over. */
export class QuantizedPool2d extends Module {
  /** Pooling of `kind` with the float module's geometry. */
  constructor(
    /** Max pooling or adaptive average pooling. */
    readonly kind: 'max' | 'adaptiveAvg',
    /** The float module's geometry. */
    readonly options: {
      /** Max pooling window. */
      kernelSize?: number | [number, number];
      /** Max pooling stride. */
      stride?: number | [number, number];
      /** Max pooling padding. */
      padding?: number | [number, number];
      /** Adaptive pooling output size. */
      outputSize?: [number, number];
    },
  ) {
    super();
  }

  override forward(x: QTensor): QTensor {
    const q = expectQ('QuantizedPool2d', x);
    return tracedQuantized(this.kind === 'max' ? 'quantizedMaxPool2d' : 'quantizedAdaptiveAvgPool2d', [q], { ...this.options }, () => this.run(q));
  }

  private run(q: QTensor): QTensor {
    const ints = noGrad(() => tidy(() => {
      const f = q._int.to('float32');
      const o = this.options;
      const pooled = this.kind === 'max'
        ? maxPool2d(f, o.kernelSize!, { stride: o.stride, padding: o.padding })
        // PyTorch's kernel rounds (sum - zp * size) / size, then adds zp back: ties go to even of that.
        : adaptiveAvgPool2d(f, o.outputSize!).sub(q.qZeroPoint()).round().add(q.qZeroPoint());
      return pooled.to('uint8').permute([0, 2, 3, 1]).contiguous();
    }));
    return fromChannelsLast(ints, q.qScale(), q.qZeroPoint());
  }

  override _getName(): string {
    return this.kind === 'max' ? 'QuantizedMaxPool2d' : 'QuantizedAdaptiveAvgPool2d';
  }
}

/** Flatten of a quantized [N, C, 1, 1] (or any) tensor to [N, rest]. */
export class QuantizedFlatten extends Module {
  override forward(x: QTensor): QTensor {
    const q = expectQ('QuantizedFlatten', x);
    const n = q.shape[0]!;
    return tracedQuantized('quantizedFlatten', [q], {}, () => {
      const ints = tidy(() => q._int.contiguous().reshape([n, -1]));
      return QTensor.fromIntRepr(ints, 'quint8', { kind: 'per_tensor', scale: q.qScale(), zeroPoint: q.qZeroPoint() });
    });
  }
}
