/**
 * Quantized tensors: an integer tensor plus the affine map back to real
 * values, real = (q - zeroPoint) * scale, per tensor or per channel along
 * one axis, as PyTorch's quantized tensors (torch.quint8 / qint8 / qint32).
 */
import type { DType } from '../dtype.js';
import { DTypeError, KilnError, ShapeError } from '../errors.js';
import type { Tensor } from '../tensor.js';
import { tensor } from '../ops/creation.js';
import { dequantize } from './quantize.js';

/** PyTorch's quantized dtypes: unsigned 8-bit, signed 8-bit, signed 32-bit (biases). */
export type QDType = 'quint8' | 'qint8' | 'qint32';

/** Every quantized dtype. */
export const QDTYPES: readonly QDType[] = ['quint8', 'qint8', 'qint32'];

/** PyTorch's quantization schemes (torch.per_tensor_affine, ...). */
export type QScheme = 'per_tensor_affine' | 'per_tensor_symmetric' | 'per_channel_affine' | 'per_channel_symmetric';

/** The integer dtype a quantized dtype is stored in (what intRepr() returns). */
export function intDtypeOf(dtype: QDType): DType {
  return dtype === 'quint8' ? 'uint8' : dtype === 'qint8' ? 'int8' : 'int32';
}

/** The representable integer range [min, max] of a quantized dtype. */
export function qRange(dtype: QDType): [number, number] {
  switch (dtype) {
    case 'quint8': return [0, 255];
    case 'qint8': return [-128, 127];
    case 'qint32': return [-2147483648, 2147483647];
  }
}

/** Rejects anything but a quantized dtype, naming the op. */
export function checkQDtype(op: string, dtype: unknown): QDType {
  if (!(QDTYPES as readonly unknown[]).includes(dtype)) {
    throw new DTypeError(op, `expected a quantized dtype (${QDTYPES.join(', ')}), got ${String(dtype)}`);
  }
  return dtype as QDType;
}

/** Per-tensor or per-channel quantization parameters. Scales are doubles, as PyTorch keeps them. */
export type QParams =
  /** One scale and zero point for the whole tensor. */
  | {
    /** Discriminant. */
    kind: 'per_tensor';
    /** The scale. */
    scale: number;
    /** The zero point. */
    zeroPoint: number;
  }
  /** One scale and zero point per slice along `axis`. */
  | {
    /** Discriminant. */
    kind: 'per_channel';
    /** One scale per slice along `axis`. */
    scales: readonly number[];
    /** One zero point per slice along `axis`. */
    zeroPoints: readonly number[];
    /** The channel axis. */
    axis: number;
  };

/**
 * A quantized tensor: the integers (`intRepr()`), their dtype and how to map
 * them back to reals. Owns its integer tensor: `dispose()` frees it.
 * Build one with `quantizePerTensor`, `quantizePerChannel` or
 * {@link QTensor.fromIntRepr}; `dequantize()` gives float32 back.
 */
export class QTensor {
  /** Marks Kiln quantized tensors without instanceof. */
  readonly _isKilnQTensor = true;

  private constructor(
    /** @internal the integer tensor (possibly a strided view). */
    readonly _int: Tensor,
    /** The quantized dtype (PyTorch's `q.dtype`). */
    readonly dtype: QDType,
    /** @internal */
    readonly _params: QParams,
    private readonly symmetric: boolean,
  ) {}

  /**
   * Wraps integers as a quantized tensor (PyTorch's
   * `_make_per_tensor_quantized_tensor` / `_make_per_channel_quantized_tensor`).
   * Takes ownership of `intRepr` (any layout: quantized convs keep a
   * channels-last view); its dtype must be the
   * storage dtype of `dtype`. `symmetric` only labels the scheme.
   */
  static fromIntRepr(intRepr: Tensor, dtype: QDType, params: QParams, symmetric = false): QTensor {
    const op = 'QTensor.fromIntRepr';
    checkQDtype(op, dtype);
    if (intRepr.dtype !== intDtypeOf(dtype)) {
      throw new DTypeError(op, `a ${dtype} tensor stores ${intDtypeOf(dtype)} integers, got ${intRepr.dtype}`);
    }
    if (params.kind === 'per_tensor') {
      checkScale(op, params.scale);
    } else {
      const d = params.axis < 0 ? params.axis + intRepr.dim() : params.axis;
      if (d < 0 || d >= intRepr.dim()) throw new KilnError(op, `axis ${params.axis} out of range for a tensor of rank ${intRepr.dim()}`);
      const c = intRepr.shape[d]!;
      if (params.scales.length !== c || params.zeroPoints.length !== c) {
        throw new ShapeError(op, `expected ${c} scales and zero points for axis ${d} of size ${c}, got ${params.scales.length} and ${params.zeroPoints.length}`);
      }
      params.scales.forEach((s) => checkScale(op, s));
      params = { ...params, axis: d };
    }
    return new QTensor(intRepr, dtype, params, symmetric);
  }

  /** Sizes of each dim. */
  get shape(): readonly number[] {
    return this._int.shape;
  }

  /** The backend the integers live on. */
  get device(): string {
    return this._int.device;
  }

  /** Number of dims. */
  dim(): number {
    return this._int.dim();
  }

  /** Number of elements. */
  numel(): number {
    return this._int.numel();
  }

  /** True after dispose(). */
  get isDisposed(): boolean {
    return this._int.isDisposed;
  }

  /** The quantization scheme (PyTorch's `q.qscheme()`). */
  qscheme(): QScheme {
    const kind = this._params.kind === 'per_tensor' ? 'per_tensor' : 'per_channel';
    return `${kind}_${this.symmetric ? 'symmetric' : 'affine'}` as QScheme;
  }

  /** The integers as a plain tensor of int8 / uint8 / int32 (a new tensor sharing the storage). */
  intRepr(): Tensor {
    return this._int.alias();
  }

  /** The float32 values (q - zeroPoint) * scale (PyTorch's `q.dequantize()`). */
  dequantize(): Tensor {
    return dequantize(this);
  }

  /** The scale of a per-tensor quantized tensor. */
  qScale(): number {
    return this.perTensor('qScale').scale;
  }

  /** The zero point of a per-tensor quantized tensor. */
  qZeroPoint(): number {
    return this.perTensor('qZeroPoint').zeroPoint;
  }

  /** Per-channel scales as a float32 tensor on this tensor's device (PyTorch returns float64). */
  qPerChannelScales(): Tensor {
    return tensor([...this.perChannel('qPerChannelScales').scales], { dtype: 'float32', device: this.device });
  }

  /** Per-channel zero points as an int32 tensor (PyTorch returns int64). */
  qPerChannelZeroPoints(): Tensor {
    return tensor([...this.perChannel('qPerChannelZeroPoints').zeroPoints], { dtype: 'int32', device: this.device });
  }

  /** The channel axis of a per-channel quantized tensor. */
  qPerChannelAxis(): number {
    return this.perChannel('qPerChannelAxis').axis;
  }

  /** The per-channel parameters as host arrays (scales as doubles). */
  perChannelParams(): {
    /** Scales (doubles). */
    scales: readonly number[];
    /** Zero points. */
    zeroPoints: readonly number[];
    /** The channel axis. */
    axis: number;
  } {
    return this.perChannel('perChannelParams');
  }

  /** Frees the integer storage. */
  dispose(): void {
    this._int.dispose();
  }

  /** `using q = ...` disposes at the end of the block. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  /** A one-line description: shape, dtype, scheme, device. */
  toString(): string {
    return `QTensor(shape=[${this.shape.join(', ')}], dtype=${this.dtype}, qscheme=${this.qscheme()}, device=${this.device})`;
  }

  private perTensor(op: string): { scale: number; zeroPoint: number } {
    if (this._params.kind !== 'per_tensor') throw new KilnError(op, `expected a per-tensor quantized tensor, got qscheme ${this.qscheme()}`);
    return this._params;
  }

  private perChannel(op: string): { scales: readonly number[]; zeroPoints: readonly number[]; axis: number } {
    if (this._params.kind !== 'per_channel') throw new KilnError(op, `expected a per-channel quantized tensor, got qscheme ${this.qscheme()}`);
    return this._params;
  }
}

function checkScale(op: string, scale: number): void {
  if (!(scale > 0) || !Number.isFinite(scale)) throw new KilnError(op, `scale must be a positive finite number, got ${scale}`);
}

/** True for a Kiln {@link QTensor} (safe across duplicated module copies). */
export function isQTensor(x: unknown): x is QTensor {
  return (x as QTensor | null)?._isKilnQTensor === true;
}
