/** Backend glue for reduce(): splits outer/reduced dims, picks the strategy, dispatches. */
import type { ReduceOp, View } from '@kiln/core';
import type { GPUStorage } from '../pool.js';
import type { Runtime } from '../runtime.js';
import { grid1d, storageOf } from '../wgsl/common.js';
import { REDUCE_WG, RM, reduceKey, reductionWgsl, type ReduceConfig } from '../wgsl/reduction.js';
import { coalesce, numel } from '../views.js';
import { Meta } from './elementwise.js';

type GView = View<GPUStorage>;

export function reduce(rt: Runtime, op: ReduceOp, x: GView, reduceRank: number, out: GView): void {
  const split = x.shape.length - reduceRank;
  const outerShape = x.shape.slice(0, split);
  const redShape = x.shape.slice(split);
  const outer = numel(outerShape);
  const red = numel(redShape);
  if (outer === 0) return;
  const o = coalesce(outerShape, [x.strides.slice(0, split)]);
  const r = coalesce(redShape, [x.strides.slice(split)]);
  const isFloat = (d: string) => d === 'float32' || d === 'float16';
  const floatCompute = isFloat(x.dtype) || isFloat(out.dtype) || op === 'mean';
  // float16 x / out: packed words read and written in place, f32 accumulation (wgsl/reduction.ts).
  const half = [...(x.dtype === 'float16' ? ['x'] : []), ...(out.dtype === 'float16' ? ['out'] : [])];
  const config: ReduceConfig = {
    op,
    strategy: red >= 256 && outer < 4096 ? 'workgroup' : 'thread',
    outerRank: o.shape.length,
    redRank: r.shape.length,
    xType: x.dtype === 'float16' ? 'f32' : storageOf(x.dtype),
    compute: floatCompute ? 'f32' : 'i32',
    outDtype: out.dtype,
  };
  if (half.length) config.half = half;
  const meta = new Meta(RM.words);
  meta.u[RM.outer] = outer;
  meta.u[RM.red] = red;
  meta.u[RM.offset] = x.offset;
  meta.set(RM.outerShape, o.shape).set(RM.outerStrides, o.strides[0]);
  meta.set(RM.redShape, r.shape).set(RM.redStrides, r.strides[0]);
  meta.u[RM.outOffset] = out.offset;
  rt.dispatch({
    kernel: `reduce.${op}`,
    key: reduceKey(config),
    code: () => reductionWgsl(config),
    bindings: [{ buffer: out.storage.buffer, write: true }, { buffer: x.storage.buffer }],
    meta: meta.u,
    workgroups: config.strategy === 'thread' ? grid1d(outer, REDUCE_WG) : grid1d(outer, 1),
  });
}
