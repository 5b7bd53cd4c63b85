import { KilnError, zerosLike, type Tensor } from '@kiln/core';
import { Optimizer, f32, type ParamGroup, type ParamGroupInput } from './optimizer.js';

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
    const lr = group.lr;
    const [beta1, beta2] = group.betas ?? [0.9, 0.999];
    const eps = group.eps ?? 1e-8;
    const weightDecay = group.weightDecay ?? 0;
    for (const p of group.params) {
      const g = p.grad;
      if (!g) continue;
      const state = this.stateOf(p);
      if (state.step === undefined) {
        state.step = 0;
        state.exp_avg = this.keepState(zerosLike(p));
        state.exp_avg_sq = this.keepState(zerosLike(p));
        if (group.amsgrad) state.max_exp_avg_sq = this.keepState(zerosLike(p));
      }
      const expAvg = state.exp_avg as Tensor;
      const expAvgSq = state.exp_avg_sq as Tensor;
      let grad = group.maximize ? g.neg() : g;
      const step = (state.step as number) + 1;
      state.step = step;
      if (this.decoupledWeightDecay) p.mul_(f32(1 - lr * weightDecay));
      else if (weightDecay !== 0) grad = grad.add(p.mul(f32(weightDecay)));
      // Operation order as ATen's kernels (addcmul: v + (s * a) * b; addcdiv: p + (s * a) / b), so float32 rounding matches.
      expAvg.mul_(f32(beta1)).add_(grad.mul(f32(1 - beta1)));
      expAvgSq.mul_(f32(beta2)).add_(grad.mul(f32(1 - beta2)).mul(grad));
      const biasCorrection1 = 1 - beta1 ** step;
      const biasCorrection2 = 1 - beta2 ** step;
      const stepSize = lr / biasCorrection1;
      const biasCorrection2Sqrt = Math.sqrt(biasCorrection2);
      let v = expAvgSq;
      if (group.amsgrad) {
        const maxSq = state.max_exp_avg_sq as Tensor;
        maxSq.maximum_(expAvgSq);
        v = maxSq;
      }
      const denom = v.sqrt().div(f32(biasCorrection2Sqrt)).add_(f32(eps));
      p.add_(expAvg.mul(f32(-stepSize)).div(denom));
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
