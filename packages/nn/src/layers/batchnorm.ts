import { KilnError, ShapeError, batchNorm, empty, isRecomputing, ones, tensor, zeros, type Tensor } from '@kiln/core';
import { Module } from '../module.js';
import { parameter } from '../parameter.js';
import { py, pyFloat } from '../repr.js';
import { ones_, zeros_ } from '../init.js';

/** Options of {@link BatchNorm2d}, as torch.nn.BatchNorm2d's keyword arguments. */
export interface BatchNormOptions {
  /** Added to the variance before the square root. Default 1e-5. */
  eps?: number;
  /** Running-stat factor; null means a cumulative average over all batches. */
  momentum?: number | null;
  /** Learnable weight and bias (default true). */
  affine?: boolean;
  /** Keep running_mean / running_var / num_batches_tracked buffers (default true). */
  trackRunningStats?: boolean;
  /** Backend to create the parameters and buffers on. Default: the default backend. */
  device?: string;
}

/**
 * Batch normalisation over the channels of NCHW input (torch.nn.BatchNorm2d).
 * Buffers carry PyTorch's names, so state dicts interchange:
 * `running_mean`, `running_var`, `num_batches_tracked` (int32 here, int64 in
 * PyTorch; same key and value).
 */
export class BatchNorm2d extends Module {
  /** Channels (C of the [N, C, H, W] input). */
  readonly numFeatures: number;
  /** Added to the variance before the square root. */
  eps: number;
  /** Running-stat update factor; null means a cumulative average. */
  momentum: number | null;
  /** True when weight and bias are learned. */
  readonly affine: boolean;
  /** True when running_mean / running_var are kept (and used in eval). */
  readonly trackRunningStats: boolean;
  /** The scale [C] (null without affine). */
  declare weight: Tensor | null;
  /** The shift [C] (null without affine). */
  declare bias: Tensor | null;
  /** Running mean [C] (torchvision's state-dict name). */
  declare running_mean: Tensor | null;
  /** Running variance [C]. */
  declare running_var: Tensor | null;
  /** Batches seen in training (int32 scalar). */
  declare num_batches_tracked: Tensor | null;
  /** Host copy of num_batches_tracked (momentum=null needs it without a readback); null when unknown. */
  private hostBatches: number | null = 0;

  /** Weight 1, bias 0, running mean 0 and variance 1, as PyTorch. */
  constructor(numFeatures: number, opts: BatchNormOptions = {}) {
    super();
    this.numFeatures = numFeatures;
    this.eps = opts.eps ?? 1e-5;
    this.momentum = opts.momentum === undefined ? 0.1 : opts.momentum;
    this.affine = opts.affine ?? true;
    this.trackRunningStats = opts.trackRunningStats ?? true;
    const device = opts.device;
    this.registerParameter('weight', this.affine ? parameter(empty([numFeatures], { device })) : null);
    this.registerParameter('bias', this.affine ? parameter(empty([numFeatures], { device })) : null);
    if (this.trackRunningStats) {
      this.registerBuffer('running_mean', zeros([numFeatures], { device }));
      this.registerBuffer('running_var', ones([numFeatures], { device }));
      this.registerBuffer('num_batches_tracked', tensor(0, { dtype: 'int32', device }));
    } else {
      this.registerBuffer('running_mean', null);
      this.registerBuffer('running_var', null);
      this.registerBuffer('num_batches_tracked', null);
    }
    this.resetParameters();
  }

  /** running_mean (camelCase alias). */
  get runningMean(): Tensor | null {
    return this.running_mean;
  }

  /** running_var (camelCase alias). */
  get runningVar(): Tensor | null {
    return this.running_var;
  }

  /** num_batches_tracked (camelCase alias). */
  get numBatchesTracked(): Tensor | null {
    return this.num_batches_tracked;
  }

  /** Running stats back to mean 0, variance 1, no batches. */
  resetRunningStats(): void {
    if (!this.trackRunningStats) return;
    zeros_(this.running_mean!);
    ones_(this.running_var!);
    this.num_batches_tracked!.zero_();
    this.hostBatches = 0;
  }

  /** Running stats reset, weight 1 and bias 0. */
  resetParameters(): void {
    this.resetRunningStats();
    if (this.affine) {
      ones_(this.weight!);
      zeros_(this.bias!);
    }
  }

  override forward(x: Tensor): Tensor {
    if (x.dim() !== 4) throw new ShapeError('BatchNorm2d', `expected 4D input (got ${x.dim()}D input)`);
    let factor = this.momentum ?? 0;
    // A checkpoint's recomputation (isRecomputing) must not count the batch twice.
    if (this.training && this.trackRunningStats && this.num_batches_tracked && !isRecomputing()) {
      this.num_batches_tracked.add_(1);
      if (this.hostBatches !== null) this.hostBatches++;
      if (this.momentum === null) factor = 1 / this.batchesSeen();
    }
    const useBatchStats = this.training || (!this.running_mean && !this.running_var);
    const track = !this.training || this.trackRunningStats;
    return batchNorm(x, track ? this.running_mean : null, track ? this.running_var : null, {
      weight: this.weight,
      bias: this.bias,
      training: useBatchStats,
      momentum: factor,
      eps: this.eps,
    });
  }

  private batchesSeen(): number {
    if (this.hostBatches === null) {
      const t = this.num_batches_tracked!;
      if (t.device !== 'cpu') {
        throw new KilnError('BatchNorm2d', `momentum=null (cumulative average) needs num_batches_tracked on the host, but it was loaded on ${t.device}; load the state dict on cpu first`);
      }
      this.hostBatches = t.dataSync()[0]!;
    }
    return this.hostBatches;
  }

  override _loadFromStateDict(sd: Map<string, Tensor>, prefix: string, missing: string[], unexpected: string[], errors: string[]): void {
    super._loadFromStateDict(sd, prefix, missing, unexpected, errors);
    const src = sd.get(`${prefix}num_batches_tracked`);
    if (src !== undefined) this.hostBatches = src.device === 'cpu' && src.numel() === 1 ? src.dataSync()[0]! : null;
  }

  override extraRepr(): string {
    return `${this.numFeatures}, eps=${pyFloat(this.eps)}, momentum=${this.momentum === null ? 'None' : pyFloat(this.momentum)}, affine=${py(this.affine)}, track_running_stats=${py(this.trackRunningStats)}`;
  }
}
