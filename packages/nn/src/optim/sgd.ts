import { KilnError, sgdStep_, type SgdStepOptions, type Tensor } from '@kiln/core';
import { Optimizer, type ParamGroup, type ParamGroupInput } from './optimizer.js';

/**
 * Options of {@link SGD} (each may be overridden per parameter group): core's
 * fused update's hyper-parameters, as torch.optim.SGD names them. `lr` is
 * required; nesterov needs momentum > 0 and dampening 0.
 */
export type SGDOptions = SgdStepOptions;

/**
 * Stochastic gradient descent with momentum, dampening, Nesterov and L2
 * weight decay (torch.optim.SGD, PyTorch's exact update rule):
 *
 *     d = grad (+ weightDecay * p)
 *     buf = d.clone() on the first step, else momentum * buf + (1 - dampening) * d
 *     d = nesterov ? d + momentum * buf : buf
 *     p -= lr * d
 *
 * Each parameter's update is one fused pass (core's sgdStep_: one kernel
 * reading p, grad and the buffer once), rounded as torch's op chain.
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
    const opts = {
      lr: group.lr, momentum: group.momentum ?? 0, dampening: group.dampening ?? 0, weightDecay: group.weightDecay ?? 0,
      nesterov: group.nesterov ?? false, maximize: group.maximize ?? false,
    };
    for (const p of group.params) {
      if (!p.grad) continue;
      const state = this.stateOf(p);
      const given = (state.momentum_buffer as Tensor | undefined) ?? null;
      const buf = sgdStep_(p, p.grad, given, opts);
      if (buf && buf !== given) state.momentum_buffer = this.keepState(buf);
    }
  }
}
