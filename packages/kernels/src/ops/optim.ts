/** Backend glue for the fused optimizer updates (contiguous float32 views; float16 gets core's float32 stand-ins). */
import type { OptimizerStep, View } from '@kiln/core';
import type { OpContext } from '../backend.js';
import type { GPUStorage } from '../pool.js';
import { grid1d } from '../wgsl/common.js';
import { OM, OPTIM_COEFFICIENTS, OPTIM_FLAGS, optimBindings, optimKey, optimWgsl, type OptimConfig } from '../wgsl/optim.js';
import { numel } from '../views.js';
import { Meta } from './elementwise.js';

type GView = View<GPUStorage>;

/** Encodes one fused optimizer update (Backend.optimizerStep). */
export function optimizerStep(ctx: OpContext, step: OptimizerStep<GPUStorage>): void {
  const total = numel(step.param.shape);
  if (total === 0) return;
  const optional = step.rule === 'sgd' ? step.momentumBuffer : step.maxExpAvgSq;
  const views: GView[] = step.rule === 'sgd'
    ? [step.param, step.grad, ...(optional ? [optional] : [])]
    : [step.param, step.grad, step.expAvg, step.expAvgSq, ...(optional ? [optional] : [])];
  const vec4 = total % 4 === 0 && views.every((v) => v.offset % 4 === 0);
  const lanes = vec4 ? 4 : 1;
  const config: OptimConfig = { rule: step.rule, optionalState: optional !== undefined, vec4 };
  const meta = new Meta(OM.words);
  meta.u[OM.n] = total / lanes;
  meta.set(OM.off, views.map((v) => v.offset / lanes));
  let flags = step.maximize ? OPTIM_FLAGS.maximize : 0;
  if (step.rule === 'sgd') flags |= (step.nesterov ? OPTIM_FLAGS.nesterov : 0) | (step.initBuffer ? OPTIM_FLAGS.initBuffer : 0);
  meta.u[OM.flags] = flags;
  const coefficients = step as unknown as Record<string, number>;
  OPTIM_COEFFICIENTS[step.rule].forEach((name, i) => meta.f32(OM.coef + i, coefficients[name]!));
  const names = optimBindings(config);
  ctx.rt.dispatch({
    kernel: `optim.${step.rule}`,
    key: optimKey(config),
    code: () => optimWgsl(config),
    bindings: views.map((v, i) => ({ buffer: v.storage.buffer, write: names[i] !== 'g' })),
    meta: meta.u,
    workgroups: grid1d(total / lanes),
  });
}
