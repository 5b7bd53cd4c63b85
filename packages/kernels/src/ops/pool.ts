/** Backend glue for the pooling primitives (float16 views read and written in place). */
import type { Pool2dParams, View } from '@kiln/core';
import type { OpContext } from '../backend.js';
import type { GPUStorage } from '../pool.js';
import { grid1d } from '../wgsl/common.js';
import { PM, poolKey, poolWgsl, type MaxPoolGeometry, type PoolKind } from '../wgsl/pool.js';
import { numel } from '../views.js';
import { Meta } from './elementwise.js';

type GView = View<GPUStorage>;

/**
 * x: the input-sized view (x or dx), y: the output-sized view (out or dy).
 * `write` is whichever of them the kernel writes; threads cover it.
 */
function run(ctx: OpContext, kind: PoolKind, x: GView, y: GView, p: Pool2dParams | null, indices?: GView): void {
  const backward = kind.endsWith('Backward');
  const written = backward ? x : y;
  const total = numel(written.shape);
  if (total === 0) return;
  const [N, C, H, W] = x.shape;
  const [, , OH, OW] = y.shape;
  // float16 views by their WGSL names: 'x' the input-sized one, 'y' the output-sized one (wgsl/pool.ts).
  const half = [...(x.dtype === 'float16' ? ['x'] : []), ...(y.dtype === 'float16' ? ['y'] : [])];
  const meta = new Meta(PM.words);
  meta.set(PM.N, [N, C, H, W, OH, OW]);
  if (p) {
    meta.set(PM.KH, [...p.kernel, ...p.stride, ...p.padding, ...p.dilation]);
    meta.u[PM.includePad] = p.countIncludePad === false ? 0 : 1;
    meta.u[PM.divisor] = p.divisorOverride ?? 0;
  }
  meta.u[PM.total] = total;
  meta.set(PM.x, [x.offset, ...x.strides]);
  meta.set(PM.y, [y.offset, ...y.strides]);
  if (indices) meta.set(PM.idx, [indices.offset, ...indices.strides]);
  const bindings = [
    { buffer: written.storage.buffer, write: true },
    { buffer: (backward ? y : x).storage.buffer },
  ];
  if (indices) bindings.push({ buffer: indices.storage.buffer, write: kind === 'max' });
  let geo: MaxPoolGeometry | undefined;
  if ((kind === 'max' || kind === 'maxBackward') && p && indices) {
    // (n, c) merge when n's stride is C times c's in every view (contiguous NCHW), so the kernel never divides by C.
    const merges = (v: GView) => N === 1 || v.strides[0] === C * v.strides[1]!;
    geo = { kernel: p.kernel, stride: p.stride, padding: p.padding, dilation: p.dilation, plane: [H!, W!, OH!, OW!], mergedNC: merges(x) && merges(y) && merges(indices) };
  }
  ctx.rt.dispatch({ kernel: `pool.${kind}`, key: poolKey(kind, half, geo), code: () => poolWgsl(kind, half, geo), bindings, meta: meta.u, workgroups: grid1d(total) });
}

export function maxPool2d(ctx: OpContext, x: GView, out: GView, indices: GView, p: Pool2dParams): void {
  run(ctx, 'max', x, out, p, indices);
}
export function maxPool2dBackward(ctx: OpContext, dy: GView, indices: GView, dx: GView, p: Pool2dParams): void {
  run(ctx, 'maxBackward', dx, dy, p, indices);
}
export function avgPool2d(ctx: OpContext, x: GView, out: GView, p: Pool2dParams): void {
  run(ctx, 'avg', x, out, p);
}
export function avgPool2dBackward(ctx: OpContext, dy: GView, dx: GView, p: Pool2dParams): void {
  run(ctx, 'avgBackward', dx, dy, p);
}
export function adaptiveAvgPool2d(ctx: OpContext, x: GView, out: GView): void {
  run(ctx, 'adaptive', x, out, null);
}
export function adaptiveAvgPool2dBackward(ctx: OpContext, dy: GView, dx: GView): void {
  run(ctx, 'adaptiveBackward', dx, dy, null);
}
