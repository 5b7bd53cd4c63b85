import { KilnError } from '@kiln/core';
import type { Optimizer } from '../optim/optimizer.js';

/** A scheduler's state: plain numbers and arrays under PyTorch's attribute names. */
export type SchedulerStateDict = Record<string, unknown>;

/**
 * Base of the learning-rate schedulers (PyTorch 1.13's _LRScheduler). The
 * first scheduler built on an optimizer records each group's `initialLr`;
 * constructing a scheduler performs its initial step (epoch 0), so
 * `getLastLr()` is the lr of the first optimizer step. Each subclass
 * constructor ends with `this.initialStep()` once its fields are set.
 */
export abstract class LRScheduler {
  /** The optimizer whose group learning rates this sets. */
  readonly optimizer: Optimizer;
  /** The lr each group started from (its initialLr). */
  baseLrs: number[];
  /** Number of step() calls so far, minus one (-1 before the initial step). */
  lastEpoch: number;
  /** @internal Step calls since construction (PyTorch's _step_count). */
  _stepCount = 0;
  protected lastLr: number[] = [];

  /** Records each group's initialLr; subclasses end their constructor with initialStep(). */
  constructor(optimizer: Optimizer, lastEpoch = -1) {
    this.optimizer = optimizer;
    if (lastEpoch === -1) {
      for (const g of optimizer.paramGroups) g.initialLr ??= g.lr;
    } else {
      optimizer.paramGroups.forEach((g, i) => {
        if (g.initialLr === undefined) throw new KilnError(new.target.name, `param 'initial_lr' is not specified in param_groups[${i}] when resuming an optimizer`);
      });
    }
    this.baseLrs = optimizer.paramGroups.map((g) => g.initialLr!);
    this.lastEpoch = lastEpoch;
  }

  /** PyTorch's _initial_step: resets the step count and performs the first step. */
  initialStep(): void {
    this._stepCount = 0;
    this.step();
  }

  /** The lrs of the next epoch, computed from the current ones (PyTorch's chainable get_lr). */
  protected abstract getLr(): number[];

  /** The lrs at `lastEpoch` from the base lrs alone, where a closed form exists. */
  protected closedFormLr(): number[] | null {
    return null;
  }

  /** Advances one epoch (or jumps to `epoch`, using the closed form where there is one) and sets each group's lr. */
  step(epoch?: number): void {
    this._stepCount++;
    let values: number[];
    if (epoch === undefined) {
      this.lastEpoch++;
      values = this.getLr();
    } else {
      this.lastEpoch = epoch;
      values = this.closedFormLr() ?? this.getLr();
    }
    this.optimizer.paramGroups.forEach((g, i) => (g.lr = values[i]!));
    this.lastLr = this.optimizer.paramGroups.map((g) => g.lr);
  }

  /** The lrs the last step set, one per group. */
  getLastLr(): number[] {
    return [...this.lastLr];
  }

  /** Current lrs of the optimizer's groups. */
  protected groupLrs(): number[] {
    return this.optimizer.paramGroups.map((g) => g.lr);
  }

  /** State under PyTorch's names (base_lrs, last_epoch, _step_count, _last_lr, and the scheduler's own). */
  stateDict(): SchedulerStateDict {
    return { base_lrs: [...this.baseLrs], last_epoch: this.lastEpoch, _step_count: this._stepCount, _last_lr: [...this.lastLr], ...this.ownState() };
  }

  /** Restores state from {@link stateDict}. */
  loadStateDict(sd: SchedulerStateDict): void {
    if (Array.isArray(sd.base_lrs)) this.baseLrs = [...(sd.base_lrs as number[])];
    if (typeof sd.last_epoch === 'number') this.lastEpoch = sd.last_epoch;
    if (typeof sd._step_count === 'number') this._stepCount = sd._step_count;
    if (Array.isArray(sd._last_lr)) this.lastLr = [...(sd._last_lr as number[])];
    this.loadOwnState(sd);
  }

  /** The scheduler's own hyper-parameters, under PyTorch's names. */
  protected ownState(): SchedulerStateDict {
    return {};
  }

  protected loadOwnState(_sd: SchedulerStateDict): void {}
}
