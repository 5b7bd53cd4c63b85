// The fused optimizer updates: one backend primitive per parameter that reads
// the parameter, its gradient and its state once and writes parameter and
// state once, instead of a chain of elementwise ops each reading and writing
// whole tensors. The rules are PyTorch's single-tensor ones (backend.ts
// SgdStep / AdamStep); the scalars reach the primitive as the float32
// coefficients ATen's ops multiply by, so a learning-rate schedule changes
// numbers, not kernels. Not traced and not recorded: an optimizer update is
// not part of a model.
import type { Tensor } from '../tensor.js';
import type { Backend, OptimizerStep, View } from '../backend.js';
import { AutogradError, DTypeError, ShapeError, fmtShape } from '../errors.js';
import { isGradEnabled } from '../autograd/grad-mode.js';
import { sameShape } from '../shape.js';
import { commonBackend, empty } from './util.js';

const f = Math.fround;

/** Hyper-parameters of {@link sgdStep_}, as torch.optim.SGD names them. */
export interface SgdStepOptions {
  /** Learning rate. */
  lr: number;
  /** Momentum factor. Default 0 (no buffer). */
  momentum?: number;
  /** Dampening of the momentum buffer. Default 0. */
  dampening?: number;
  /** L2 penalty added to the gradient. Default 0. */
  weightDecay?: number;
  /** Nesterov momentum. Default false. */
  nesterov?: boolean;
  /** Ascend the objective. Default false. */
  maximize?: boolean;
}

/** Hyper-parameters of {@link adamStep_}, as torch.optim.Adam names them. */
export interface AdamStepOptions {
  /** Learning rate. */
  lr: number;
  /** Coefficient of the gradient's running average. */
  beta1: number;
  /** Coefficient of the squared gradient's running average. */
  beta2: number;
  /** Added to the denominator. */
  eps: number;
  /** Weight decay: L2 through the gradient, or decoupled (AdamW) with `decoupledWeightDecay`. Default 0. */
  weightDecay?: number;
  /** AdamW: p *= 1 - lr * weightDecay before the step. Default false. */
  decoupledWeightDecay?: boolean;
  /** Ascend the objective. Default false. */
  maximize?: boolean;
  /** The step number t this update is (1 on the first), for the bias corrections. */
  step: number;
}

/** Adam's per-parameter state tensors, updated in place (PyTorch's exp_avg, exp_avg_sq, max_exp_avg_sq). */
export interface AdamState {
  /** Running average of the gradient. */
  expAvg: Tensor;
  /** Running average of the squared gradient. */
  expAvgSq: Tensor;
  /** AMSGrad's running maximum of expAvgSq; null or absent without AMSGrad. */
  maxExpAvgSq?: Tensor | null;
}

/**
 * Checks the operands of a fused update and runs it: `written` (the
 * parameter first, then its state) are updated in place, each through a
 * contiguous stand-in if it is strided; `grad` is read.
 */
function runUpdate(op: string, backend: Backend, written: Tensor[], grad: Tensor, step: (w: View[], g: View) => OptimizerStep): void {
  const param = written[0]!;
  if (param.dtype !== 'float32' && param.dtype !== 'float16') {
    throw new DTypeError(op, `expected a float32 or float16 parameter, got ${param.dtype}`);
  }
  for (const [what, t] of [['grad', grad], ...written.slice(1).map((s) => ['state', s] as const)] as const) {
    if (!sameShape(t.shape, param.shape)) throw new ShapeError(op, `expected ${what} of the parameter's shape ${fmtShape(param.shape)}, got ${fmtShape(t.shape)}`);
    if (t.dtype !== param.dtype) throw new DTypeError(op, `expected ${what} of the parameter's dtype ${param.dtype}, got ${t.dtype}`);
  }
  if (isGradEnabled() && [grad, ...written].some((t) => t.requiresGrad)) {
    throw new AutogradError(op, 'an optimizer update writes tensors that require grad in place, outside autograd; run it under noGrad() (Optimizer.step does)');
  }
  if (param.numel() === 0) return;
  const stand = written.map((t) => (t.isContiguous() ? t : t.contiguous()));
  const g = grad.isContiguous() ? grad : grad.contiguous();
  backend.optimizerStep(step(stand.map((t) => t._view()), g._view()));
  written.forEach((t, i) => {
    if (stand[i] !== t) {
      backend.copy(stand[i]!._view(), t._view());
      stand[i]!.dispose();
    }
    t._storage.bumpVersion();
  });
  if (g !== grad) g.dispose();
}

/**
 * One torch.optim.SGD update of `param` in place, fused into one backend
 * primitive (see SgdStep in backend.ts for the per-element rule). With
 * momentum, `momentumBuffer` is updated in place; pass null on the first
 * step and a new buffer holding d comes back, as torch clones d into it.
 * Returns the buffer (null when momentum is 0). Run under noGrad().
 */
export function sgdStep_(param: Tensor, grad: Tensor, momentumBuffer: Tensor | null, opts: SgdStepOptions): Tensor | null {
  const op = 'sgdStep_';
  const backend = commonBackend(op, [param, grad, momentumBuffer]);
  const momentum = opts.momentum ?? 0;
  if (momentum === 0) {
    runUpdate(op, backend, [param], grad, ([p], g) => sgdStep(p!, g, undefined, false, opts));
    return null;
  }
  const initBuffer = momentumBuffer === null;
  const buf = momentumBuffer ?? empty(param.shape, param.dtype, backend, op);
  runUpdate(op, backend, [param, buf], grad, ([p, b], g) => sgdStep(p!, g, b, initBuffer, opts));
  return buf;
}

function sgdStep(param: View, grad: View, momentumBuffer: View | undefined, initBuffer: boolean, o: SgdStepOptions): OptimizerStep {
  return {
    rule: 'sgd', param, grad, momentumBuffer, initBuffer,
    weightDecay: f(o.weightDecay ?? 0), momentum: f(o.momentum ?? 0), dampenedScale: f(1 - (o.dampening ?? 0)), negLr: f(-o.lr),
    nesterov: o.nesterov ?? false, maximize: o.maximize ?? false,
  };
}

/**
 * One torch.optim.Adam / AdamW update of `param` in place (PyTorch 1.13's
 * single-tensor rule, AMSGrad when `state.maxExpAvgSq` is given), fused into
 * one backend primitive (see AdamStep in backend.ts). The state tensors are
 * updated in place. Run under noGrad().
 */
export function adamStep_(param: Tensor, grad: Tensor, state: AdamState, opts: AdamStepOptions): void {
  const op = 'adamStep_';
  const { expAvg, expAvgSq } = state;
  const maxSq = state.maxExpAvgSq ?? null;
  const backend = commonBackend(op, [param, grad, expAvg, expAvgSq, maxSq]);
  const { lr, beta1, beta2, step } = opts;
  const weightDecay = opts.weightDecay ?? 0;
  const decoupled = opts.decoupledWeightDecay ?? false;
  const stepSize = lr / (1 - beta1 ** step);
  runUpdate(op, backend, maxSq ? [param, expAvg, expAvgSq, maxSq] : [param, expAvg, expAvgSq], grad, ([p, m, v, mx], g) => ({
    rule: 'adam', param: p!, grad: g, expAvg: m!, expAvgSq: v!, maxExpAvgSq: mx,
    paramScale: decoupled ? f(1 - lr * weightDecay) : 1,
    weightDecay: decoupled ? 0 : f(weightDecay),
    beta1: f(beta1), oneMinusBeta1: f(1 - beta1), beta2: f(beta2), oneMinusBeta2: f(1 - beta2),
    biasCorrection2Sqrt: f(Math.sqrt(1 - beta2 ** step)), eps: f(opts.eps), negStepSize: f(-stepSize),
    maximize: opts.maximize ?? false,
  }));
}
