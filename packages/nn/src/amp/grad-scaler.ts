// Dynamic loss scaling for float16 training, with PyTorch's GradScaler
// rules (torch.cuda.amp.GradScaler, 1.13): the loss is multiplied by the
// scale before backward so small float16 gradients do not flush to zero;
// before the optimizer step the gradients are divided by it again and
// checked for inf/NaN; a step with a non-finite gradient is skipped and the
// scale backs off, and after `growthInterval` clean steps in a row it grows.
//
// The scale lives on the host as the float32 value PyTorch's scale tensor
// holds (every update is rounded to float32 as its kernel stores it), so
// getScale() needs no readback. Deciding whether to step needs the
// inf/NaN flag on the host: unscale_() (and step(), which calls it) read
// back one number per optimizer, the one synchronisation PyTorch's step
// makes too (`found_inf.item()`).
import { KilnError, noGrad, tidy, type Tensor } from '@kiln/core';
import type { Optimizer } from '../optim/optimizer.js';

/** Options of {@link GradScaler}, PyTorch's defaults. */
export interface GradScalerOptions {
  /** Initial scale (default 2^16). */
  initScale?: number;
  /** Factor the scale grows by after `growthInterval` clean steps (default 2). */
  growthFactor?: number;
  /** Factor the scale shrinks by after a step with inf/NaN gradients (default 0.5). */
  backoffFactor?: number;
  /** Clean steps in a row before the scale grows (default 2000). */
  growthInterval?: number;
  /** When false every method is a pass-through (default true). */
  enabled?: boolean;
}

/** A GradScaler's state in PyTorch's layout (GradScaler.state_dict()). */
export interface GradScalerStateDict {
  /** The current scale. */
  scale: number;
  /** Factor of each growth. */
  growth_factor: number;
  /** Factor of each backoff. */
  backoff_factor: number;
  /** Clean steps in a row before a growth. */
  growth_interval: number;
  /** Clean steps since the last growth or backoff. */
  _growth_tracker: number;
}

type Stage = 'ready' | 'unscaled' | 'stepped';
interface OptimizerState {
  stage: Stage;
  foundInf: boolean | null;
}

const f32 = Math.fround;

/**
 * Loss scaling for mixed-precision training (torch.cuda.amp.GradScaler):
 *
 * ```ts
 * const scaler = new GradScaler();
 * for (const [x, y] of batches) {
 *   opt.zeroGrad();
 *   const loss = autocast(() => lossFn(model.call(x), y));
 *   scaler.scale(loss).backward();
 *   await scaler.step(opt);   // skipped when a gradient is inf/NaN
 *   scaler.update();          // backs off, or grows after growthInterval clean steps
 * }
 * ```
 */
export class GradScaler {
  private scaleValue: number;
  private growthTracker = 0;
  private growthFactor: number;
  private backoffFactor: number;
  private growthInterval: number;
  private readonly enabled: boolean;
  private perOptimizer = new Map<Optimizer, OptimizerState>();

  /** A scaler with PyTorch's defaults unless `opts` says otherwise. */
  constructor(opts: GradScalerOptions = {}) {
    this.scaleValue = f32(opts.initScale ?? 2 ** 16);
    this.growthFactor = opts.growthFactor ?? 2;
    this.backoffFactor = opts.backoffFactor ?? 0.5;
    this.growthInterval = opts.growthInterval ?? 2000;
    this.enabled = opts.enabled ?? true;
    if (!(this.growthFactor > 1)) throw new KilnError('GradScaler', `growthFactor should be > 1, got ${this.growthFactor}`);
    if (!(this.backoffFactor < 1)) throw new KilnError('GradScaler', `backoffFactor should be < 1, got ${this.backoffFactor}`);
    if (!Number.isInteger(this.growthInterval) || this.growthInterval <= 0) throw new KilnError('GradScaler', `growthInterval should be a positive integer, got ${this.growthInterval}`);
  }

  /** True unless constructed with `enabled: false`. */
  isEnabled(): boolean {
    return this.enabled;
  }

  /** `outputs` times the current scale (float32, as PyTorch multiplies by its float32 scale tensor). */
  scale(outputs: Tensor): Tensor;
  scale(outputs: readonly Tensor[]): Tensor[];
  scale(outputs: Tensor | readonly Tensor[]): Tensor | Tensor[] {
    if (!this.enabled) return outputs as Tensor | Tensor[];
    const one = (t: Tensor) => t.mul(this.scaleValue);
    return Array.isArray(outputs) ? outputs.map(one) : one(outputs as Tensor);
  }

  /**
   * Divides the optimizer's gradients by the scale in place and records
   * whether any is inf/NaN (torch's unscale_). Call it before clipping
   * gradients; at most once per optimizer between update() calls.
   */
  async unscale_(optimizer: Optimizer): Promise<void> {
    if (!this.enabled) return;
    const state = this.stateOf(optimizer);
    if (state.stage === 'unscaled') throw new KilnError('GradScaler.unscale_', 'unscale_() has already been called on this optimizer since the last update()');
    if (state.stage === 'stepped') throw new KilnError('GradScaler.unscale_', 'unscale_() is being called after step()');
    // PyTorch: inv_scale = scale.double().reciprocal().float().
    const invScale = f32(1 / this.scaleValue);
    const grads = optimizer.paramGroups.flatMap((g) => g.params).map((p) => p.grad).filter((g): g is Tensor => g !== null && !g.isDisposed);
    for (const g of grads) if ((g.dtype as string) === 'float16') throw new KilnError('GradScaler.unscale_', 'attempting to unscale float16 gradients: keep the parameters float32 (autocast casts them per op)');
    state.stage = 'unscaled';
    const nonFinite = noGrad(() =>
      tidy(() => {
        let probe: Tensor | null = null;
        for (const g of grads) {
          // The check reads the scaled value, as torch's kernel does before multiplying.
          // g * 0 is 0 where g is finite and NaN where it is inf or NaN, so the sum is NaN exactly
          // when some element is not finite (a sum of g itself could overflow to inf from finite
          // values): two passes over the gradient, where isfinite().logicalNot().sum() took five.
          const bad = g.mul(0).sum();
          probe = probe ? probe.add(bad) : bad;
          g.mul_(invScale);
        }
        return probe;
      }),
    );
    if (!nonFinite) {
      state.foundInf = false;
      return;
    }
    try {
      state.foundInf = Number.isNaN((await nonFinite.toArray())[0]!);
    } finally {
      nonFinite.dispose();
    }
  }

  /**
   * Unscales the gradients (unless unscale_() already did) and runs
   * `optimizer.step()` only when all of them are finite; returns the step's
   * result, or undefined when skipped.
   */
  async step<T = void>(optimizer: Optimizer, closure?: () => T): Promise<T | undefined> {
    if (!this.enabled) return optimizer.step(closure);
    if (closure !== undefined) throw new KilnError('GradScaler.step', 'closure use is not currently supported if GradScaler is enabled');
    const state = this.stateOf(optimizer);
    if (state.stage === 'stepped') throw new KilnError('GradScaler.step', 'step() has already been called since the last update()');
    if (state.stage === 'ready') await this.unscale_(optimizer);
    let result: T | undefined;
    if (state.foundInf === false) result = optimizer.step() as T | undefined;
    state.stage = 'stepped';
    return result;
  }

  /**
   * Adjusts the scale after the step(s) of an iteration: times
   * backoffFactor if any optimizer saw inf/NaN (and the clean-step count
   * restarts), times growthFactor after growthInterval clean steps in a
   * row. `newScale` sets it directly instead.
   */
  update(newScale?: number): void {
    if (!this.enabled) return;
    if (newScale !== undefined) {
      this.scaleValue = f32(newScale);
    } else {
      const found = [...this.perOptimizer.values()].filter((s) => s.foundInf !== null);
      if (found.length === 0) throw new KilnError('GradScaler.update', 'no inf checks were recorded prior to update()');
      if (found.some((s) => s.foundInf)) {
        // Rounded to float32 as the kernel stores it: float * double, then narrowed.
        this.scaleValue = f32(this.scaleValue * this.backoffFactor);
        this.growthTracker = 0;
      } else if (this.growthTracker + 1 === this.growthInterval) {
        const grown = f32(this.scaleValue * this.growthFactor);
        if (Number.isFinite(grown)) this.scaleValue = grown;
        this.growthTracker = 0;
      } else {
        this.growthTracker++;
      }
    }
    this.perOptimizer.clear();
  }

  /** The current scale (torch's get_scale()); 1 when disabled. */
  getScale(): number {
    return this.enabled ? this.scaleValue : 1;
  }

  /** Clean steps since the last growth or backoff (torch's _growth_tracker). */
  getGrowthTracker(): number {
    return this.growthTracker;
  }

  /** The growth factor. */
  getGrowthFactor(): number {
    return this.growthFactor;
  }

  /** Sets the growth factor. */
  setGrowthFactor(value: number): void {
    this.growthFactor = value;
  }

  /** The backoff factor. */
  getBackoffFactor(): number {
    return this.backoffFactor;
  }

  /** Sets the backoff factor. */
  setBackoffFactor(value: number): void {
    this.backoffFactor = value;
  }

  /** The growth interval. */
  getGrowthInterval(): number {
    return this.growthInterval;
  }

  /** Sets the growth interval. */
  setGrowthInterval(value: number): void {
    this.growthInterval = value;
  }

  /** The scaler's state under PyTorch's keys (empty when disabled, as PyTorch). */
  stateDict(): GradScalerStateDict | Record<string, never> {
    if (!this.enabled) return {};
    return {
      scale: this.scaleValue,
      growth_factor: this.growthFactor,
      backoff_factor: this.backoffFactor,
      growth_interval: this.growthInterval,
      _growth_tracker: this.growthTracker,
    };
  }

  /** Restores a state from stateDict() (or PyTorch's GradScaler.state_dict()). */
  loadStateDict(state: GradScalerStateDict | Record<string, never>): void {
    if (!this.enabled) return;
    if (!('scale' in state)) throw new KilnError('GradScaler.loadStateDict', 'the state dict is empty: it was saved by a disabled GradScaler');
    this.scaleValue = f32(state.scale);
    this.growthFactor = state.growth_factor;
    this.backoffFactor = state.backoff_factor;
    this.growthInterval = state.growth_interval;
    this.growthTracker = state._growth_tracker;
  }

  private stateOf(optimizer: Optimizer): OptimizerState {
    let s = this.perOptimizer.get(optimizer);
    if (!s) this.perOptimizer.set(optimizer, (s = { stage: 'ready', foundInf: null }));
    return s;
  }
}
