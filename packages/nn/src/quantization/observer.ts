/**
 * Observers (torch.ao.quantization.observer): modules that watch the
 * tensors passing through them and turn their range into quantization
 * parameters. State is PyTorch's (`min_val`, `max_val` buffers), and
 * calculateQparams() follows its _calculate_qparams in float32.
 */
import { KilnError, keep, noGrad, tensor, tidy, type QDType, type Tensor } from '@kiln/core';
import { Module } from '../module.js';
import { calculateQParams, quantRange, type TensorQParams } from './qparams.js';

/** PyTorch's qscheme names an observer accepts. */
export type ObserverQScheme = 'per_tensor_affine' | 'per_tensor_symmetric' | 'per_channel_affine' | 'per_channel_symmetric';

/** Options shared by the observers (PyTorch's constructor arguments in camelCase). */
export interface ObserverOptions {
  /** 'quint8' (activations, default) or 'qint8' (weights). */
  dtype?: QDType;
  /** Per-tensor or per-channel, affine or symmetric. */
  qscheme?: ObserverQScheme;
  /** One bit less of range (0..127 / -64..63), as x86 engines need for activations. */
  reduceRange?: boolean;
  /** A custom integer range (both or neither). */
  quantMin?: number;
  /** The custom range's top (with quantMin). */
  quantMax?: number;
}

/** Quantization parameters on the host (scales as doubles of the float32 values, as PyTorch's float()). */
export interface HostQParams {
  /** One scale per tensor (length 1) or per channel. */
  scales: number[];
  /** One zero point per tensor or per channel. */
  zeroPoints: number[];
  /** The channel axis of per-channel parameters; -1 for per-tensor. */
  axis: number;
  /** The quantized dtype. */
  dtype: QDType;
  /** The scheme. */
  qscheme: ObserverQScheme;
}

/** What every observer has: a forward that records and returns its input, and its parameters. */
export abstract class ObserverBase extends Module {
  /** The quantized dtype the parameters are for. */
  readonly dtype: QDType;
  /** PyTorch's qscheme. */
  readonly qscheme: ObserverQScheme;
  /** Whether the range is one bit short (x86 activations). */
  readonly reduceRange: boolean;
  /** The lowest integer the parameters map onto. */
  readonly quantMin: number;
  /** The highest integer the parameters map onto. */
  readonly quantMax: number;
  private readonly customRange: boolean;

  /** Checks the options; `defaultScheme` is the subclass's qscheme when none is given. */
  constructor(opts: ObserverOptions = {}, defaultScheme: ObserverQScheme) {
    super();
    this.dtype = opts.dtype ?? 'quint8';
    this.qscheme = opts.qscheme ?? defaultScheme;
    this.reduceRange = opts.reduceRange ?? false;
    if (this.dtype !== 'quint8' && this.dtype !== 'qint8') throw new KilnError(this.constructor.name, `expected dtype quint8 or qint8, got ${this.dtype}`);
    this.customRange = opts.quantMin !== undefined || opts.quantMax !== undefined;
    const [lo, hi] = this.customRange ? [opts.quantMin!, opts.quantMax!] : quantRange(this.dtype, this.reduceRange);
    if (!(lo <= 0 && 0 <= hi && lo < hi)) throw new KilnError(this.constructor.name, `quantMin/quantMax must bracket 0, got [${lo}, ${hi}]`);
    this.quantMin = lo;
    this.quantMax = hi;
  }

  /** True for the symmetric schemes. */
  get symmetric(): boolean {
    return this.qscheme.endsWith('symmetric');
  }

  /** The channel axis of a per-channel observer, -1 for per-tensor ones. */
  get axis(): number {
    return -1;
  }

  /** @internal the recorded range (float32 tensors, one entry per tensor or per channel). */
  protected abstract range(): { min: Tensor; max: Tensor };

  /** True once forward() has seen data. */
  abstract get calibrated(): boolean;

  /** Scale (float32) and zero point (int32) tensors from the recorded range (PyTorch's calculate_qparams). */
  calculateQparams(): TensorQParams {
    if (!this.calibrated) {
      throw new KilnError('calculateQparams', `${this.constructor.name} has not observed any data: run calibration batches through the prepared model before convert()`);
    }
    return noGrad(() => tidy(() => {
      const { min, max } = this.range();
      return calculateQParams(min, max, this.quantMin, this.quantMax, this.symmetric, this.dtype, this.customRange);
    }));
  }

  /** The parameters on the host (awaits a readback on WebGPU). */
  async qparams(): Promise<HostQParams> {
    const { scale, zeroPoint } = this.calculateQparams();
    const [s, z] = await Promise.all([scale.toArray(), zeroPoint.toArray()]);
    scale.dispose();
    zeroPoint.dispose();
    return { scales: Array.from(s), zeroPoints: Array.from(z), axis: this.axis, dtype: this.dtype, qscheme: this.qscheme };
  }

  override extraRepr(): string {
    return `min_val=..., max_val=..., dtype=torch.${this.dtype}, qscheme=torch.${this.qscheme}`;
  }
}

/** @internal Replaces buffer `name` of `m` with `value` (disposing the old one). */
export function setBuffer(m: Module, name: string, value: Tensor): void {
  const old = m._buffers.get(name);
  // Module state outlives any tidy() the forward runs in.
  m._buffers.set(name, keep(value));
  old?.dispose();
}

/**
 * Running min/max of everything observed (torch.ao.quantization.MinMaxObserver);
 * per-tensor affine by default, per-tensor symmetric for weights.
 */
export class MinMaxObserver extends ObserverBase {
  /** The smallest value seen (0-d; +inf before any data). */
  declare min_val: Tensor;
  /** The largest value seen (0-d; -inf before any data). */
  declare max_val: Tensor;

  /** A per-tensor observer (affine by default). */
  constructor(opts: ObserverOptions = {}) {
    super(opts, 'per_tensor_affine');
    if (this.qscheme.startsWith('per_channel')) throw new KilnError('MinMaxObserver', `expected a per-tensor qscheme, got ${this.qscheme}; use PerChannelMinMaxObserver`);
    this.registerBuffer('min_val', tensor(Infinity));
    this.registerBuffer('max_val', tensor(-Infinity));
  }

  /** True once forward() has seen data. */
  get calibrated(): boolean {
    return this._observed;
  }

  private _observed = false;

  /** The update rule: the new min/max given the batch's (moving-average observers override it). */
  protected update(batchMin: Tensor, batchMax: Tensor): [Tensor, Tensor] {
    return [this.min_val.minimum(batchMin), this.max_val.maximum(batchMax)];
  }

  override forward(x: Tensor): Tensor {
    if (x.numel() === 0) return x;
    noGrad(() => {
      const [lo, hi] = tidy(() => {
        const xd = x.detach();
        if (this._observed && this.min_val.device !== x.device) throw new KilnError('MinMaxObserver', `observer state is on ${this.min_val.device}, input on ${x.device}`);
        return this._observed ? this.update(xd.min(), xd.max()) : [xd.min(), xd.max()];
      });
      setBuffer(this, 'min_val', lo);
      setBuffer(this, 'max_val', hi);
      this._observed = true;
    });
    return x;
  }

  protected range(): { min: Tensor; max: Tensor } {
    return { min: this.min_val, max: this.max_val };
  }
}

/** Exponential moving average of batch min/max (torch.ao.quantization.MovingAverageMinMaxObserver). */
export class MovingAverageMinMaxObserver extends MinMaxObserver {
  /** Weight of each new batch's min/max (PyTorch's averaging_constant, default 0.01). */
  readonly averagingConstant: number;

  /** A moving-average per-tensor observer. */
  constructor(opts: ObserverOptions & { averagingConstant?: number } = {}) {
    super(opts);
    this.averagingConstant = opts.averagingConstant ?? 0.01;
  }

  protected override update(batchMin: Tensor, batchMax: Tensor): [Tensor, Tensor] {
    const c = this.averagingConstant;
    return [this.min_val.add(batchMin.sub(this.min_val).mul(c)), this.max_val.add(batchMax.sub(this.max_val).mul(c))];
  }
}

/** Per-channel running min/max along `chAxis` (torch.ao.quantization.PerChannelMinMaxObserver); per-channel affine by default. */
export class PerChannelMinMaxObserver extends ObserverBase {
  /** The channel axis (PyTorch's ch_axis, default 0). */
  readonly chAxis: number;
  /** Per-channel minima. */
  declare min_val: Tensor;
  /** Per-channel maxima. */
  declare max_val: Tensor;
  private _observed = false;

  /** A per-channel observer along `chAxis`. */
  constructor(opts: ObserverOptions & { chAxis?: number } = {}) {
    super(opts, 'per_channel_affine');
    if (this.qscheme.startsWith('per_tensor')) throw new KilnError('PerChannelMinMaxObserver', `expected a per-channel qscheme, got ${this.qscheme}`);
    this.chAxis = opts.chAxis ?? 0;
    this.registerBuffer('min_val', tensor([]));
    this.registerBuffer('max_val', tensor([]));
  }

  /** The channel axis. */
  override get axis(): number {
    return this.chAxis;
  }

  /** True once forward() has seen data. */
  get calibrated(): boolean {
    return this._observed;
  }

  override forward(x: Tensor): Tensor {
    if (x.numel() === 0) return x;
    noGrad(() => {
      const [lo, hi] = tidy(() => {
        const d = this.chAxis < 0 ? this.chAxis + x.dim() : this.chAxis;
        const perm = [d, ...x.shape.map((_, i) => i).filter((i) => i !== d)];
        const y = x.detach().permute(perm).reshape([x.shape[d]!, -1]);
        const bmin = y.amin(1);
        const bmax = y.amax(1);
        return this._observed ? [this.min_val.minimum(bmin), this.max_val.maximum(bmax)] : [bmin, bmax];
      });
      setBuffer(this, 'min_val', lo);
      setBuffer(this, 'max_val', hi);
      this._observed = true;
    });
    return x;
  }

  protected range(): { min: Tensor; max: Tensor } {
    return { min: this.min_val, max: this.max_val };
  }
}
