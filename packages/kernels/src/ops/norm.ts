/** Backend glue for the fused batch-norm primitives (contiguous [N, C, S] views; float16 x, dy, y, dx read and written in place). */
import { BackendError, type View } from '@kiln/core';
import type { OpContext } from '../backend.js';
import type { GPUStorage } from '../pool.js';
import { grid1d } from '../wgsl/common.js';
import { NM, NORM_WG, normKey, normWgsl, SERIAL_MAX, SERIAL_WG, type NormGrid, type NormKind, type NormReduce } from '../wgsl/norm.js';
import { numel } from '../views.js';
import { Meta } from './elementwise.js';

type GView = View<GPUStorage>;

/** The WGSL names of each kernel's bindings, in binding order (wgsl/norm.ts). */
const NAMES: Record<NormKind, string[]> = {
  stats: ['x', 'mean', 'vari'],
  affine: ['x', 'scale', 'shift', 'y'],
  backwardReduce: ['dy', 'x', 'mean', 'invstd', 'sumdy', 'sumdyx'],
  backwardInput: ['dy', 'x', 'mean', 'invstd', 'scale', 'sumdy', 'sumdyx', 'dx'],
};

/** WebGPU's default maxComputeWorkgroupsPerDimension (grid1d keeps to it too). */
const MAX_GRID = 65535;

/** Test/probe hook: `grid` forces the element kernels' grid ('flat' fits any shape), `reduce` the reductions' form. */
export const normOverride: { grid?: NormGrid; reduce?: NormReduce } = {};

/** Element-sized operands that may be float16; statistics and coefficients are float32 (core's batchNorm makes them so). */
const HALF_ABLE = new Set(['x', 'y', 'dy', 'dx']);

function run(ctx: OpContext, kind: NormKind, x: GView, views: GView[], written: number[], perChannel: boolean): void {
  const [N, C, S] = x.shape as [number, number, number];
  const half: string[] = [];
  views.forEach((v, i) => {
    const name = NAMES[kind][i]!;
    if (v.dtype === 'float16') {
      if (!HALF_ABLE.has(name)) throw new BackendError(`batchNorm.${kind}`, `expected ${name} (per-channel) as float32, got float16`);
      half.push(name);
    }
  });
  const total = numel(x.shape);
  if (total === 0) return;
  const meta = new Meta(NM.words);
  meta.set(NM.N, [N, C, S, total]);
  meta.set(NM.off, views.map((v) => v.offset));
  const bindings = views.map((v, i) => ({ buffer: v.storage.buffer, write: written.includes(i) }));
  // Element kernels: one workgroup row per (n, c) plane when at least half the row's threads have an element
  // (layer4's 7x7 planes leave 81 % idle: measured slower than the flat grid's divisions) and no grid dimension
  // passes 65535 (wgsl/norm.ts NormGrid).
  const planes: [number, number, number] = [Math.ceil(S / NORM_WG), C, N];
  const filled = S / (planes[0] * NORM_WG) >= 0.5;
  const grid: NormGrid = normOverride.grid ?? (filled && planes.every((d) => d <= MAX_GRID) ? 'planes' : 'flat');
  // Reductions: a thread per channel when a channel is small (N*S <= 256; wgsl/norm.ts NormReduce).
  const reduce: NormReduce = normOverride.reduce ?? (N * S <= SERIAL_MAX ? 'serial' : 'tree');
  ctx.rt.dispatch({
    kernel: `norm.${kind}`,
    key: normKey(kind, half, grid, perChannel ? reduce : 'tree'),
    code: () => normWgsl(kind, half, grid, perChannel ? reduce : 'tree'),
    bindings,
    meta: meta.u,
    workgroups: perChannel ? (reduce === 'serial' ? [Math.ceil(C / SERIAL_WG), 1, 1] : [C, 1, 1]) : grid === 'planes' ? planes : grid1d(total),
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
