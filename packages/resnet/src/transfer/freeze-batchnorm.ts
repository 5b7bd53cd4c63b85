import { BatchNorm2d, type Module } from '@kiln/nn';

/** Options of {@link freezeBatchNorm}. */
export interface FreezeBatchNormOptions {
  /**
   * Which BatchNorm layers to freeze: 'frozen' (default) those whose
   * affine parameters do not require grad, i.e. the ones in a part of the
   * network frozen with `requiresGrad_(false)`; 'all' every one.
   */
  which?: 'frozen' | 'all';
}

/** Undoes {@link freezeBatchNorm}. */
export interface FrozenBatchNorm {
  /** The BatchNorm layers kept in eval mode, by dotted name. */
  readonly names: string[];
  /** Lets those layers follow train()/eval() again (leaving them in eval mode). */
  release(): void;
}

const isFrozen = (bn: BatchNorm2d) => [bn.weight, bn.bias].every((p) => !p || !p.requiresGrad);

/**
 * Keeps BatchNorm layers in eval mode while the rest of the model trains:
 * they normalise with their running statistics and never update them, as
 * in the PyTorch recipe for fine-tuning a frozen backbone
 * (`for m in model.modules(): if isinstance(m, BatchNorm2d) and frozen: m.eval()`),
 * except that a later `model.train()` cannot undo it.
 *
 * Call it after freezing: `model.requiresGrad_(false); model.layer4.requiresGrad_(true);
 * freezeBatchNorm(model); model.train();` leaves every BatchNorm outside
 * layer4 in eval mode.
 */
export function freezeBatchNorm(module: Module, opts: FreezeBatchNormOptions = {}): FrozenBatchNorm {
  const all = opts.which === 'all';
  const frozen: [string, BatchNorm2d][] = [];
  for (const [name, m] of module.namedModules()) {
    if (!(m instanceof BatchNorm2d) || (!all && !isFrozen(m))) continue;
    // An own `train` shadows Module.prototype.train, so Module.train's walk over children keeps this one in eval.
    Object.defineProperty(m, 'train', {
      configurable: true,
      writable: true,
      value(this: BatchNorm2d): BatchNorm2d {
        this.training = false;
        return this;
      },
    });
    m.training = false;
    frozen.push([name, m]);
  }
  return {
    names: frozen.map(([n]) => n),
    release() {
      for (const [, m] of frozen) Reflect.deleteProperty(m, 'train');
    },
  };
}
