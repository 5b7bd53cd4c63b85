import { KilnError, type Tensor } from '@kiln/core';
import { Optimizer, f32, type ParamGroup, type ParamGroupInput } from './optimizer.js';

/** Options of {@link SGD} (each may be overridden per parameter group). */
export interface SGDOptions {
  /** Learning rate (required, as torch.optim.SGD). */
  lr: number;
  /** Momentum factor. Default 0. */
  momentum?: number;
  /** Dampening of the momentum buffer. Default 0. */
  dampening?: number;
  /** L2 penalty added to the gradient. Default 0. */
  weightDecay?: number;
  /** Nesterov momentum (needs momentum > 0 and dampening 0). Default false. */
  nesterov?: boolean;
  /** Ascend the objective. Default false. */
  maximize?: boolean;
}

/**
 * Stochastic gradient descent with momentum, dampening, Nesterov and L2
 * weight decay (torch.optim.SGD, PyTorch's exact update rule):
 *
 *     d = grad (+ weightDecay * p)
 *     buf = d.clone() on the first step, else momentum * buf + (1 - dampening) * d
 *     d = nesterov ? d + momentum * buf : buf
 *     p -= lr * d
 */
export class SGD extends Optimizer {
  /** Parameters (or groups with their own options) and the defaults, as torch.optim.SGD. */
  constructor(params: Iterable<Tensor> | Iterable<ParamGroupInput>, opts: SGDOptions) {
    const { lr, momentum = 0, dampening = 0, weightDecay = 0, nesterov = false, maximize = false } = opts;
    if (lr === undefined || lr < 0) throw new KilnError('SGD', `Invalid learning rate: ${lr}`);
    if (momentum < 0) throw new KilnError('SGD', `Invalid momentum value: ${momentum}`);
    if (weightDecay < 0) throw new KilnError('SGD', `Invalid weight_decay value: ${weightDecay}`);
    if (nesterov && (momentum <= 0 || dampening !== 0)) throw new KilnError('SGD', 'Nesterov momentum requires a momentum and zero dampening');
    super(params, { lr, momentum, dampening, weightDecay, nesterov, maximize });
  }

  protected override updateGroup(group: ParamGroup): void {
    const lr = group.lr;
    const momentum = group.momentum ?? 0;
    const dampening = group.dampening ?? 0;
    const weightDecay = group.weightDecay ?? 0;
    for (const p of group.params) {
      const grad = p.grad;
      if (!grad) continue;
      let d = group.maximize ? grad.neg() : grad;
      if (weightDecay !== 0) d = d.add(p.mul(f32(weightDecay)));
      if (momentum !== 0) {
        const state = this.stateOf(p);
        let buf = state.momentum_buffer as Tensor | undefined;
        if (!buf) {
          buf = this.keepState(d.clone());
          state.momentum_buffer = buf;
        } else {
          buf.mul_(f32(momentum)).add_(dampening === 0 ? d : d.mul(f32(1 - dampening)));
        }
        d = group.nesterov ? d.add(buf.mul(f32(momentum))) : buf;
      }
      p.add_(d.mul(f32(-lr)));
    }
  }
}
