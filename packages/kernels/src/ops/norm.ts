/** Backend glue for the fused batch-norm primitives (contiguous [N, C, S] views). */
import type { View } from '@kiln/core';
import type { OpContext } from '../backend.js';
import type { GPUStorage } from '../pool.js';
import { grid1d } from '../wgsl/common.js';
import { NM, normKey, normWgsl, type NormKind } from '../wgsl/norm.js';
import { numel } from '../views.js';
import { Meta } from './elementwise.js';

type GView = View<GPUStorage>;

function run(ctx: OpContext, kind: NormKind, x: GView, views: GView[], written: number[], perChannel: boolean): void {
  const [N, C, S] = x.shape as [number, number, number];
  const total = numel(x.shape);
  if (total === 0) return;
  const meta = new Meta(NM.words);
  meta.set(NM.N, [N, C, S, total]);
  meta.set(NM.off, views.map((v) => v.offset));
  const bindings = views.map((v, i) => ({ buffer: v.storage.buffer, write: written.includes(i) }));
  ctx.rt.dispatch({
    kernel: `norm.${kind}`,
    key: normKey(kind),
    code: () => normWgsl(kind),
    bindings,
    meta: meta.u,
    workgroups: perChannel ? [C, 1, 1] : grid1d(total),
  });
}

export function batchNormStats(ctx: OpContext, x: GView, mean: GView, variance: GView): void {
  run(ctx, 'stats', x, [x, mean, variance], [1, 2], true);
}
export function channelAffine(ctx: OpContext, x: GView, scale: GView, shift: GView, out: GView): void {
  run(ctx, 'affine', x, [x, scale, shift, out], [3], false);
}
export function batchNormBackwardReduce(ctx: OpContext, dy: GView, x: GView, mean: GView, invStd: GView, sumDy: GView, sumDyXhat: GView): void {
  run(ctx, 'backwardReduce', x, [dy, x, mean, invStd, sumDy, sumDyXhat], [4, 5], true);
}
export function batchNormBackwardInput(ctx: OpContext, dy: GView, x: GView, mean: GView, invStd: GView, scale: GView, sumDy: GView, sumDyXhat: GView, dx: GView): void {
  run(ctx, 'backwardInput', x, [dy, x, mean, invStd, scale, sumDy, sumDyXhat, dx], [7], false);
}
