import { KilnError } from '@kiln/core';
import type { Optimizer } from '../optim/optimizer.js';
import { LRScheduler, type SchedulerStateDict } from './scheduler.js';

/** Number of values in sorted `xs` that are <= x (Python's bisect_right). */
function bisectRight(xs: readonly number[], x: number): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (x < xs[mid]!) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** Multiplies the lr by gamma every stepSize epochs (torch.optim.lr_scheduler.StepLR). */
export class StepLR extends LRScheduler {
  /** Epochs between decays. */
  stepSize: number;
  /** Multiplicative decay factor. */
  gamma: number;

  /** Decays each group's lr by gamma every stepSize epochs (torch StepLR). */
  constructor(optimizer: Optimizer, stepSize: number, opts: { gamma?: number; lastEpoch?: number } = {}) {
    super(optimizer, opts.lastEpoch);
    this.stepSize = stepSize;
    this.gamma = opts.gamma ?? 0.1;
    this.initialStep();
  }

  protected getLr(): number[] {
    if (this.lastEpoch === 0 || this.lastEpoch % this.stepSize !== 0) return this.groupLrs();
    return this.groupLrs().map((lr) => lr * this.gamma);
  }

  protected override closedFormLr(): number[] {
    return this.baseLrs.map((b) => b * this.gamma ** Math.floor(this.lastEpoch / this.stepSize));
  }

  protected override ownState(): SchedulerStateDict {
    return { step_size: this.stepSize, gamma: this.gamma };
  }

  protected override loadOwnState(sd: SchedulerStateDict): void {
    this.stepSize = (sd.step_size as number) ?? this.stepSize;
    this.gamma = (sd.gamma as number) ?? this.gamma;
  }
}

/** Multiplies the lr by gamma at each milestone epoch (torch.optim.lr_scheduler.MultiStepLR). */
export class MultiStepLR extends LRScheduler {
  /** Milestone -> how many times it was listed (PyTorch's Counter). */
  milestones: Map<number, number>;
  /** Multiplicative decay factor. */
  gamma: number;

  /** Decays each group's lr by gamma at each milestone (torch MultiStepLR). */
  constructor(optimizer: Optimizer, milestones: readonly number[], opts: { gamma?: number; lastEpoch?: number } = {}) {
    super(optimizer, opts.lastEpoch);
    this.milestones = new Map();
    for (const m of milestones) this.milestones.set(m, (this.milestones.get(m) ?? 0) + 1);
    this.gamma = opts.gamma ?? 0.1;
    this.initialStep();
  }

  protected getLr(): number[] {
    const count = this.milestones.get(this.lastEpoch);
    if (count === undefined) return this.groupLrs();
    return this.groupLrs().map((lr) => lr * this.gamma ** count);
  }

  protected override closedFormLr(): number[] {
    const sorted = [...this.milestones].flatMap(([m, n]) => Array<number>(n).fill(m)).sort((a, b) => a - b);
    return this.baseLrs.map((b) => b * this.gamma ** bisectRight(sorted, this.lastEpoch));
  }

  protected override ownState(): SchedulerStateDict {
    return { milestones: Object.fromEntries(this.milestones), gamma: this.gamma };
  }

  protected override loadOwnState(sd: SchedulerStateDict): void {
    if (sd.milestones) this.milestones = new Map(Object.entries(sd.milestones as Record<string, number>).map(([k, v]) => [Number(k), v]));
    this.gamma = (sd.gamma as number) ?? this.gamma;
  }
}

/**
 * Scales the lr linearly from startFactor to endFactor over totalIters
 * epochs, e.g. a warm-up (torch.optim.lr_scheduler.LinearLR).
 */
export class LinearLR extends LRScheduler {
  /** Factor of the base lr at epoch 0. */
  startFactor: number;
  /** Factor of the base lr from totalIters on. */
  endFactor: number;
  /** Epochs over which the factor moves linearly. */
  totalIters: number;

  /** Scales the lr linearly from startFactor to endFactor over totalIters (torch LinearLR). */
  constructor(optimizer: Optimizer, opts: { startFactor?: number; endFactor?: number; totalIters?: number; lastEpoch?: number } = {}) {
    super(optimizer, opts.lastEpoch);
    this.startFactor = opts.startFactor ?? 1.0 / 3;
    this.endFactor = opts.endFactor ?? 1.0;
    this.totalIters = opts.totalIters ?? 5;
    if (this.startFactor > 1.0 || this.startFactor < 0) throw new KilnError('LinearLR', 'Starting multiplicative factor expected to be between 0 and 1.');
    if (this.endFactor > 1.0 || this.endFactor < 0) throw new KilnError('LinearLR', 'Ending multiplicative factor expected to be between 0 and 1.');
    this.initialStep();
  }

  protected getLr(): number[] {
    if (this.lastEpoch === 0) return this.groupLrs().map((lr) => lr * this.startFactor);
    if (this.lastEpoch > this.totalIters) return this.groupLrs();
    const { startFactor: s, endFactor: e, totalIters: n } = this;
    return this.groupLrs().map((lr) => lr * (1.0 + (e - s) / (n * s + (this.lastEpoch - 1) * (e - s))));
  }

  protected override closedFormLr(): number[] {
    const { startFactor: s, endFactor: e, totalIters: n } = this;
    return this.baseLrs.map((b) => b * (s + ((e - s) * Math.min(n, this.lastEpoch)) / n));
  }

  protected override ownState(): SchedulerStateDict {
    return { start_factor: this.startFactor, end_factor: this.endFactor, total_iters: this.totalIters };
  }

  protected override loadOwnState(sd: SchedulerStateDict): void {
    this.startFactor = (sd.start_factor as number) ?? this.startFactor;
    this.endFactor = (sd.end_factor as number) ?? this.endFactor;
    this.totalIters = (sd.total_iters as number) ?? this.totalIters;
  }
}

/**
 * Cosine annealing from the base lr to etaMin over tMax epochs
 * (torch.optim.lr_scheduler.CosineAnnealingLR), with PyTorch 1.13's
 * recursive form (and its behaviour past tMax).
 */
export class CosineAnnealingLR extends LRScheduler {
  /** Half period of the cosine, in epochs. */
  tMax: number;
  /** Lowest learning rate. */
  etaMin: number;

  /** Cosine annealing from the base lr to etaMin over tMax epochs (torch CosineAnnealingLR). */
  constructor(optimizer: Optimizer, tMax: number, opts: { etaMin?: number; lastEpoch?: number } = {}) {
    super(optimizer, opts.lastEpoch);
    this.tMax = tMax;
    this.etaMin = opts.etaMin ?? 0;
    this.initialStep();
  }

  protected getLr(): number[] {
    const { tMax, etaMin, lastEpoch } = this;
    if (lastEpoch === 0) return this.groupLrs();
    if (this._stepCount === 1 && lastEpoch > 0) {
      return this.baseLrs.map((b) => etaMin + ((b - etaMin) * (1 + Math.cos((lastEpoch * Math.PI) / tMax))) / 2);
    }
    if (pyMod(lastEpoch - 1 - tMax, 2 * tMax) === 0) {
      return this.groupLrs().map((lr, i) => lr + ((this.baseLrs[i]! - etaMin) * (1 - Math.cos(Math.PI / tMax))) / 2);
    }
    return this.groupLrs().map(
      (lr) => ((1 + Math.cos((Math.PI * lastEpoch) / tMax)) / (1 + Math.cos((Math.PI * (lastEpoch - 1)) / tMax))) * (lr - etaMin) + etaMin,
    );
  }

  protected override closedFormLr(): number[] {
    return this.baseLrs.map((b) => this.etaMin + ((b - this.etaMin) * (1 + Math.cos((Math.PI * this.lastEpoch) / this.tMax))) / 2);
  }

  protected override ownState(): SchedulerStateDict {
    return { T_max: this.tMax, eta_min: this.etaMin };
  }

  protected override loadOwnState(sd: SchedulerStateDict): void {
    this.tMax = (sd.T_max as number) ?? this.tMax;
    this.etaMin = (sd.eta_min as number) ?? this.etaMin;
  }
}

/** Python's % (the result takes the divisor's sign). */
function pyMod(a: number, b: number): number {
  return ((a % b) + b) % b;
}

/** Sets each group's lr to its initial lr times lrLambda(epoch) (torch.optim.lr_scheduler.LambdaLR). */
export class LambdaLR extends LRScheduler {
  /** One factor function per group: lr = baseLr * lambda(epoch). */
  readonly lrLambdas: ((epoch: number) => number)[];

  /** lr = baseLr * lrLambda(epoch), one function or one per group (torch LambdaLR). */
  constructor(optimizer: Optimizer, lrLambda: ((epoch: number) => number) | ((epoch: number) => number)[], opts: { lastEpoch?: number } = {}) {
    super(optimizer, opts.lastEpoch);
    const n = optimizer.paramGroups.length;
    if (Array.isArray(lrLambda)) {
      if (lrLambda.length !== n) throw new KilnError('LambdaLR', `Expected ${n} lr_lambdas, but got ${lrLambda.length}`);
      this.lrLambdas = [...lrLambda];
    } else this.lrLambdas = Array<(epoch: number) => number>(n).fill(lrLambda);
    this.initialStep();
  }

  protected getLr(): number[] {
    return this.baseLrs.map((b, i) => b * this.lrLambdas[i]!(this.lastEpoch));
  }
}

/**
 * Runs schedulers one after another, switching at the milestones
 * (torch.optim.lr_scheduler.SequentialLR), e.g. LinearLR warm-up then cosine.
 */
export class SequentialLR extends LRScheduler {
  /** The schedulers run one after another. */
  readonly schedulers: LRScheduler[];
  /** Epochs at which the next scheduler takes over. */
  readonly milestones: number[];

  /** Runs `schedulers` in turn, switching at each milestone (torch SequentialLR). */
  constructor(optimizer: Optimizer, schedulers: LRScheduler[], milestones: readonly number[], opts: { lastEpoch?: number } = {}) {
    super(optimizer, -1);
    schedulers.forEach((s, i) => {
      if (s.optimizer !== optimizer) {
        throw new KilnError('SequentialLR', `Sequential Schedulers expects all schedulers to belong to the same optimizer, but got schedulers at index ${i} to be different than the optimizer passed in.`);
      }
    });
    if (milestones.length !== schedulers.length - 1) {
      throw new KilnError('SequentialLR', `Sequential Schedulers expects number of schedulers provided to be one more than the number of milestone points, but got number of schedulers ${schedulers.length} and the number of milestones to be equal to ${milestones.length}`);
    }
    this.schedulers = [...schedulers];
    this.milestones = [...milestones];
    this.lastEpoch = (opts.lastEpoch ?? -1) + 1;
    // Reset the lrs the other schedulers' initial steps changed, undo those steps, and redo only the first.
    for (const g of optimizer.paramGroups) g.lr = g.initialLr!;
    for (const s of this.schedulers) s.lastEpoch -= 1;
    this.schedulers[0]!.initialStep();
    this.lastLr = this.schedulers[0]!.getLastLr();
  }

  protected getLr(): number[] {
    return this.groupLrs();
  }

  /** Steps the scheduler in charge at this epoch. */
  override step(): void {
    this.lastEpoch++;
    const idx = bisectRight(this.milestones, this.lastEpoch);
    const scheduler = this.schedulers[idx]!;
    if (idx > 0 && this.milestones[idx - 1] === this.lastEpoch) scheduler.step(0);
    else scheduler.step();
    this.lastLr = scheduler.getLastLr();
  }

  /** This scheduler's state and each child's. */
  override stateDict(): SchedulerStateDict {
    return { last_epoch: this.lastEpoch, _milestones: [...this.milestones], _last_lr: [...this.lastLr], _schedulers: this.schedulers.map((s) => s.stateDict()) };
  }

  /** Restores stateDict()'s output. */
  override loadStateDict(sd: SchedulerStateDict): void {
    if (typeof sd.last_epoch === 'number') this.lastEpoch = sd.last_epoch;
    if (Array.isArray(sd._last_lr)) this.lastLr = [...(sd._last_lr as number[])];
    (sd._schedulers as SchedulerStateDict[] | undefined)?.forEach((s, i) => this.schedulers[i]?.loadStateDict(s));
  }
}
