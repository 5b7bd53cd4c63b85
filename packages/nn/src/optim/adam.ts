import { KilnError, adamStep_, zerosLike, type Tensor } from '@kiln/core';
import { Optimizer, type ParamGroup, type ParamGroupInput } from './optimizer.js';

/** Options of {@link Adam} and {@link AdamW} (each may be overridden per parameter group). */
export interface AdamOptions {
  /** Learning rate. Default 1e-3. */
  lr?: number;
  /** Coefficients of the running averages of the gradient and its square. Default [0.9, 0.999]. */
  betas?: [number, number];
  /** Added to the denominator. Default 1e-8. */
  eps?: number;
  /** Weight decay: L2 in Adam, decoupled in AdamW. Default 0 (AdamW 1e-2). */
  weightDecay?: number;
  /** Use the maximum of past squared-gradient averages (AMSGrad). Default false. */
  amsgrad?: boolean;
  /** Ascend the objective. Default false. */
  maximize?: boolean;
}

function validate(name: string, o: Required<AdamOptions>): void {
  if (!(o.lr >= 0)) throw new KilnError(name, `Invalid learning rate: ${o.lr}`);
  if (!(o.eps >= 0)) throw new KilnError(name, `Invalid epsilon value: ${o.eps}`);
  if (!(o.betas[0] >= 0 && o.betas[0] < 1)) throw new KilnError(name, `Invalid beta parameter at index 0: ${o.betas[0]}`);
  if (!(o.betas[1] >= 0 && o.betas[1] < 1)) throw new KilnError(name, `Invalid beta parameter at index 1: ${o.betas[1]}`);
  if (!(o.weightDecay >= 0)) throw new KilnError(name, `Invalid weight_decay value: ${o.weightDecay}`);
}

/**
 * Adam (torch.optim.Adam), PyTorch 1.13's single-tensor rule: L2 weight
 * decay added to the gradient, step_size = lr / (1 - β1^t),
 * denom = sqrt(v) / sqrt(1 - β2^t) + eps (with the running max of v under amsgrad).
 * Each parameter's update is one fused pass (core's adamStep_), rounded as
 * ATen's op chain.
 */
export class Adam extends Optimizer {
  /** AdamW decays the weights directly instead of through the gradient. */
  protected readonly decoupledWeightDecay: boolean = false;

  /** Parameters (or groups with their own options) and the defaults, as torch.optim.Adam. */
  constructor(params: Iterable<Tensor> | Iterable<ParamGroupInput>, opts: AdamOptions = {}, weightDecayDefault = 0) {
    const o: Required<AdamOptions> = {
      lr: opts.lr ?? 1e-3,
      betas: opts.betas ?? [0.9, 0.999],
      eps: opts.eps ?? 1e-8,
      weightDecay: opts.weightDecay ?? weightDecayDefault,
      amsgrad: opts.amsgrad ?? false,
      maximize: opts.maximize ?? false,
    };
    validate(new.target.name, o);
    super(params, { ...o, betas: [...o.betas] });
  }

  protected override updateGroup(group: ParamGroup): void {
    const [beta1, beta2] = group.betas ?? [0.9, 0.999];
    const opts = {
      lr: group.lr, beta1, beta2, eps: group.eps ?? 1e-8, weightDecay: group.weightDecay ?? 0,
      decoupledWeightDecay: this.decoupledWeightDecay, maximize: group.maximize ?? false,
    };
    for (const p of group.params) {
      if (!p.grad) continue;
      const state = this.stateOf(p);
      if (state.step === undefined) {
        state.step = 0;
        state.exp_avg = this.keepState(zerosLike(p));
        state.exp_avg_sq = this.keepState(zerosLike(p));
        if (group.amsgrad) state.max_exp_avg_sq = this.keepState(zerosLike(p));
      }
      const step = (state.step as number) + 1;
      state.step = step;
      const moments = {
        expAvg: state.exp_avg as Tensor,
        expAvgSq: state.exp_avg_sq as Tensor,
        maxExpAvgSq: group.amsgrad ? (state.max_exp_avg_sq as Tensor) : null,
      };
      adamStep_(p, p.grad, moments, { ...opts, step });
    }
  }
}

/**
 * AdamW (torch.optim.AdamW): Adam with decoupled weight decay,
 * p *= 1 - lr * weightDecay before the Adam step (default weightDecay 0.01).
 */
export class AdamW extends Adam {
  protected override readonly decoupledWeightDecay: boolean = true;

  /** As Adam's, with weight decay 1e-2 by default, applied to the weights directly (torch.optim.AdamW). */
  constructor(params: Iterable<Tensor> | Iterable<ParamGroupInput>, opts: AdamOptions = {}) {
    super(params, opts, 1e-2);
  }
}
