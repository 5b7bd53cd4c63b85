/**
 * torch.ao.quantization.HistogramObserver (PyTorch 1.13): a running
 * histogram of everything observed, re-gridded when a batch widens the
 * range, and at the end a search for the min/max that minimise the L2
 * quantization error. The algorithm is sequential and data-dependent
 * (PyTorch itself calls .item() throughout), so it runs on the host, in
 * PyTorch's float32/double arithmetic (observer-histogram-math.ts). On the
 * cpu backend each batch is folded in during forward(); on WebGPU forward()
 * starts a readback of the batch and folds it in when it arrives, in
 * order: `await settle()` (or `await qparams()`, which convert() uses)
 * before reading the state.
 */
import { KilnError, fromArray, keep, noGrad, tensor, type Tensor } from '@kiln/core';
import { ObserverBase, setBuffer, type ObserverOptions } from './observer.js';
import type { TensorQParams } from './qparams.js';
import { adjustMinMax, aminmax, combineHistograms, nonLinearParamSearch, pyInt, torchHistc } from './observer-histogram-math.js';

/** Options of {@link HistogramObserver}: PyTorch's constructor arguments in camelCase. */
export interface HistogramObserverOptions extends ObserverOptions {
  /** Histogram bins (PyTorch's bins, default 2048). */
  bins?: number;
  /** Upsampling factor when two histograms with different ranges are merged (default 128). */
  upsampleRate?: number;
}

/** A HistogramObserver's state on the host (see {@link HistogramObserver.hostState}). */
export interface HistogramHostState {
  /** The histogram's float32 bin counts (fractional after re-gridding, as PyTorch's). */
  histogram: Float32Array;
  /** min_val as a float32 value. */
  min: number;
  /** max_val as a float32 value. */
  max: number;
}

/** What the observer knows on the host, and the batches on their way there. */
interface HostHistogramState {
  hist: Float32Array;
  minVal: number;
  maxVal: number;
  queued: number;
  observedAny: boolean;
  pending: Promise<void>;
  failure: unknown;
  stale: boolean;
}

/**
 * Histogram-based per-tensor observer (torch.ao.quantization.HistogramObserver):
 * buffers `histogram` (bins), `min_val`, `max_val` as PyTorch's; the
 * parameters come from the non-linear L2 search over the histogram, then
 * the MinMax rules. Per-tensor affine (default) or symmetric.
 */
export class HistogramObserver extends ObserverBase {
  /** Number of histogram bins. */
  readonly bins: number;
  /** Upsampling factor used when merging histograms. */
  readonly upsampleRate: number;
  /** Destination bins of the error search: 2^8 for both 8-bit dtypes, as PyTorch's dst_nbins. */
  readonly dstBins = 256;
  /** The histogram (float32 [bins]). */
  declare histogram: Tensor;
  /** The smallest value seen (0-d; +inf before any data). */
  declare min_val: Tensor;
  /** The largest value seen (0-d; -inf before any data). */
  declare max_val: Tensor;

  /** Host state in one object, so a copy of the module (convert copies the model) sees the batches still arriving. */
  private readonly s: HostHistogramState;

  /** A histogram observer (quint8 per-tensor affine by default). */
  constructor(opts: HistogramObserverOptions = {}) {
    super(opts, 'per_tensor_affine');
    if (this.qscheme.startsWith('per_channel')) {
      throw new KilnError('HistogramObserver', `expected per_tensor_affine or per_tensor_symmetric, got ${this.qscheme}`);
    }
    this.bins = opts.bins ?? 2048;
    this.upsampleRate = opts.upsampleRate ?? 128;
    if (!Number.isInteger(this.bins) || this.bins < 1) throw new KilnError('HistogramObserver', `expected a positive integer number of bins, got ${this.bins}`);
    if (!Number.isInteger(this.upsampleRate) || this.upsampleRate < 1) throw new KilnError('HistogramObserver', `expected a positive integer upsampleRate, got ${this.upsampleRate}`);
    this.s = { hist: new Float32Array(this.bins), minVal: Infinity, maxVal: -Infinity, queued: 0, observedAny: false, pending: Promise.resolve(), failure: null, stale: false };
    this.registerBuffer('histogram', fromArray(this.s.hist, [this.bins]));
    this.registerBuffer('min_val', tensor(Infinity));
    this.registerBuffer('max_val', tensor(-Infinity));
  }

  /**
   * True once forward() has seen data (it may still be on its way to the host:
   * see {@link settle}) or a state dict was loaded (checked again once read back).
   */
  get calibrated(): boolean {
    return this.s.observedAny || this.s.stale || this.s.minVal <= this.s.maxVal;
  }

  /** True while batches are read back and not yet folded into the histogram. */
  get pendingBatches(): number {
    return this.s.queued;
  }

  override forward(x: Tensor): Tensor {
    if (x.numel() === 0) return x;
    if (x.dtype !== 'float32') throw new KilnError('HistogramObserver', `expected a float32 input, got ${x.dtype}`);
    this.s.observedAny = true;
    if (this.s.queued === 0 && !this.s.stale && x.device === 'cpu') {
      this.observe(Float32Array.from(noGrad(() => x.detach().dataSync()) as Float32Array), x.device);
      return x;
    }
    // Snapshot now (the caller may overwrite or free x), read back, fold in order.
    const snap = noGrad(() => keep(x.detach().clone()));
    const data = snap.toArray().finally(() => snap.dispose());
    const device = x.device;
    this.s.queued++;
    this.s.pending = this.s.pending.then(async () => {
      try {
        const values = await data;
        if (this.s.failure === null) {
          await this.refresh();
          this.observe(values as Float32Array, device);
        }
      } catch (e) {
        this.s.failure ??= e;
      } finally {
        this.s.queued--;
      }
    });
    return x;
  }

  /** Waits until every observed batch is folded into the histogram; rethrows a failed readback. */
  async settle(): Promise<void> {
    await this.s.pending;
    await this.refresh();
    if (this.s.failure !== null) throw this.s.failure;
  }

  /** Scale and zero point tensors from the L2 search (PyTorch's calculate_qparams); needs a settled observer. */
  override calculateQparams(): TensorQParams {
    if (this.s.queued > 0 || this.s.stale) {
      throw new KilnError('calculateQparams', `HistogramObserver has ${this.s.queued} batch(es) still being read back: await observer.settle() (or observer.qparams()) first`);
    }
    if (this.s.failure !== null) throw this.s.failure;
    return super.calculateQparams();
  }

  override async qparams(): ReturnType<ObserverBase['qparams']> {
    await this.settle();
    return super.qparams();
  }

  /** The histogram, min and max on the host (after {@link settle}): float32 values as PyTorch's buffers hold them. */
  hostState(): HistogramHostState {
    return { histogram: Float32Array.from(this.s.hist), min: this.s.minVal, max: this.s.maxVal };
  }

  protected range(): { min: Tensor; max: Tensor } {
    const [lo, hi] = nonLinearParamSearch(this.s.hist, this.s.minVal, this.s.maxVal, this.dstBins);
    return { min: tensor(lo), max: tensor(hi) };
  }

  /** @internal A loaded state dict replaces the buffers; the host copy is re-read before the next use. */
  override _loadFromStateDict(sd: Map<string, Tensor>, prefix: string, missing: string[], unexpected: string[], errors: string[]): void {
    super._loadFromStateDict(sd, prefix, missing, unexpected, errors);
    this.s.stale = true;
    this.s.observedAny = false;
    if (this.histogram.device === 'cpu') this.refreshFrom(this.histogram.dataSync(), this.min_val.dataSync()[0]!, this.max_val.dataSync()[0]!);
  }

  private async refresh(): Promise<void> {
    if (!this.s.stale) return;
    const [h, lo, hi] = await Promise.all([this.histogram.toArray(), this.min_val.toArray(), this.max_val.toArray()]);
    this.refreshFrom(h, lo[0]!, hi[0]!);
  }

  private refreshFrom(h: ArrayLike<number>, lo: number, hi: number): void {
    this.s.hist = Float32Array.from(h);
    this.s.minVal = lo;
    this.s.maxVal = hi;
    this.s.stale = false;
  }

  /** HistogramObserver.forward on one batch's values. */
  private observe(x: Float32Array, device: string): void {
    const uninitialized = this.s.minVal === Infinity && this.s.maxVal === -Infinity;
    if (uninitialized || this.s.minVal === this.s.maxVal) {
      const [lo, hi] = aminmax(x);
      this.s.minVal = lo;
      this.s.maxVal = hi;
      // PyTorch 1.13 passes int(min_val), int(max_val) to histc: the bounds are truncated to integers.
      this.s.hist = torchHistc(x, this.bins, pyInt(lo), pyInt(hi));
    } else {
      const [newMin, newMax] = aminmax(x);
      const adj = adjustMinMax(this.s.minVal, this.s.maxVal, Math.min(newMin, this.s.minVal), Math.max(newMax, this.s.maxVal), this.bins, this.upsampleRate);
      let combined = torchHistc(x, this.bins, pyInt(adj.combinedMin), pyInt(adj.combinedMax));
      if (adj.combinedMin === this.s.minVal && adj.combinedMax === this.s.maxVal) {
        for (let i = 0; i < this.bins; i++) combined[i] = combined[i]! + this.s.hist[i]!;
      } else {
        combined = combineHistograms(combined, this.s.hist, this.upsampleRate, adj.downsampleRate, adj.startIdx);
      }
      this.s.hist = combined;
      this.s.minVal = adj.combinedMin;
      this.s.maxVal = adj.combinedMax;
    }
    this.writeBuffer('histogram', fromArray(this.s.hist, [this.bins], { device }));
    this.writeBuffer('min_val', tensor(this.s.minVal, { device }));
    this.writeBuffer('max_val', tensor(this.s.maxVal, { device }));
  }

  /** Buffer `name` takes `value`: in place where device and shape match (copies of the module share the tensor), else replaced. */
  private writeBuffer(name: string, value: Tensor): void {
    const old = this._buffers.get(name);
    if (old && old.device === value.device && old.shape.join() === value.shape.join()) {
      noGrad(() => old.copy_(value));
      value.dispose();
    } else setBuffer(this, name, value);
  }

  override extraRepr(): string {
    return `bins=${this.bins}, min_val=${this.s.minVal}, max_val=${this.s.maxVal}, dtype=torch.${this.dtype}, qscheme=torch.${this.qscheme}`;
  }
}
