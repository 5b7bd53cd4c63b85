/**
 * The float model's quantization markers, as torch.ao.quantization:
 * QuantStub / DeQuantStub (where quantized values start and end) and
 * FloatFunctional (tensor arithmetic that needs its own output observer,
 * the residual add of a ResNet block). In the float model they are
 * identities / plain ops; convert() swaps them for their quantized forms.
 */
import { KilnError, dequantize, fromChannelsLast, isQTensor, quantizePerTensor, tidy, type QTensor, type Tensor } from '@kiln/core';
import { Module } from '../../module.js';
import { pyFloat } from '../../repr.js';
import { tracedQuantized } from './trace.js';

/** Marks where float inputs become quantized (torch.ao.quantization.QuantStub); identity until convert(). */
export class QuantStub extends Module {
  override forward(x: Tensor): Tensor {
    return x;
  }
}

/** Marks where quantized values become float again (torch.ao.quantization.DeQuantStub); identity until convert(). */
export class DeQuantStub extends Module {
  override forward(x: Tensor): Tensor {
    return x;
  }
}

/**
 * Float arithmetic with an observed output (torch.ao.nn.quantized.FloatFunctional):
 * use `addRelu(a, b)` / `add(a, b)` in forward instead of tensor ops so
 * prepare() can observe, and convert() quantize, the result.
 */
export class FloatFunctional extends Module {
  /** @internal called on every result (prepare() installs the observer here). */
  _observe: (t: Tensor) => Tensor = (t) => t;

  /** a + b. */
  add(a: Tensor, b: Tensor): Tensor {
    return this._observe(a.add(b));
  }

  /** relu(a + b), as torchvision's QuantizableBasicBlock uses for its residual. */
  addRelu(a: Tensor, b: Tensor): Tensor {
    return this._observe(tidy(() => a.add(b).relu()));
  }

  override forward(): never {
    throw new KilnError('FloatFunctional', 'call add() or addRelu() instead of forward()');
  }
}

/** The quantized QuantStub: quantizes float input to quint8 with fixed scale / zero point (torch's Quantize module). */
export class Quantize extends Module {
  /** Quantizes with this scale and zero point (from the QuantStub's observer). */
  constructor(
    /** The quantized input's scale. */
    readonly scale: number,
    /** The quantized input's zero point. */
    readonly zeroPoint: number,
  ) {
    super();
  }

  override forward(x: Tensor): QTensor {
    if (isQTensor(x)) throw new KilnError('Quantize', 'expected a float input, got a QTensor');
    return tracedQuantized('quantize', [x], { scale: this.scale, zeroPoint: this.zeroPoint, dtype: 'quint8' }, () => this.run(x));
  }

  private run(x: Tensor): QTensor {
    if (x.dim() !== 4) return quantizePerTensor(x, this.scale, this.zeroPoint, 'quint8');
    // Images are kept channels-last, as the quantized convs read them.
    const nhwc = tidy(() => x.permute([0, 2, 3, 1]).contiguous());
    const q = quantizePerTensor(nhwc, this.scale, this.zeroPoint, 'quint8');
    nhwc.dispose();
    const out = fromChannelsLast(q.intRepr(), this.scale, this.zeroPoint);
    q.dispose();
    return out;
  }

  override extraRepr(): string {
    return `scale=tensor([${pyFloat(this.scale)}]), zero_point=tensor([${this.zeroPoint}]), dtype=torch.quint8`;
  }
}

/** The quantized DeQuantStub: float32 values of a QTensor (torch's DeQuantize module). */
export class DeQuantize extends Module {
  override forward(x: QTensor | Tensor): Tensor {
    if (!isQTensor(x)) throw new KilnError('DeQuantize', 'expected a QTensor input (a float tensor reached the quantized part of the model)');
    return tracedQuantized('dequantize', [x], {}, () => dequantize(x));
  }
}
