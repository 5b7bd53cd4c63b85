/** Backend glue for gather, scatterAdd, indexSelect and indexAdd. */
import type { View } from '@kiln/core';
import type { GPUStorage } from '../pool.js';
import type { Runtime } from '../runtime.js';
import { grid1d, storageOf } from '../wgsl/common.js';
import { IM, indexKey, indexingWgsl, type IndexOp } from '../wgsl/indexing.js';
import { numel } from '../views.js';
import { Meta } from './elementwise.js';

type GView = View<GPUStorage>;

/** Rank >= 1 views: a 0-d tensor is treated as shape [1]. */
function lift(v: GView): { shape: number[]; strides: number[]; offset: number } {
  return v.shape.length ? { shape: [...v.shape], strides: [...v.strides], offset: v.offset } : { shape: [1], strides: [0], offset: v.offset };
}

function run(rt: Runtime, op: IndexOp, out: GView, src: GView, index: GView, dim: number, loop: number): void {
  const total = numel(out.shape);
  if (total === 0) return;
  const o = lift(out);
  const s = lift(src);
  const i = lift(index);
  const config = { op, rank: o.shape.length, type: storageOf(out.dtype) };
  const meta = new Meta(IM.words);
  meta.set(IM.total, [total, dim, loop]);
  meta.set(IM.shape, o.shape);
  meta.set(IM.out, [o.offset, ...o.strides]);
  meta.set(IM.x, [s.offset, ...s.strides]);
  meta.set(IM.index, [i.offset, ...i.strides]);
  meta.set(IM.indexShape, i.shape);
  rt.dispatch({
    kernel: op,
    key: indexKey(config),
    code: () => indexingWgsl(config),
    bindings: [{ buffer: out.storage.buffer, write: true }, { buffer: src.storage.buffer }, { buffer: index.storage.buffer }],
    meta: meta.u,
    workgroups: grid1d(total),
  });
}

export function gather(rt: Runtime, x: GView, dim: number, index: GView, out: GView): void {
  run(rt, 'gather', out, x, index, dim, 0);
}

export function indexSelect(rt: Runtime, x: GView, dim: number, index: GView, out: GView): void {
  run(rt, 'indexSelect', out, x, index, dim, 0);
}

export function scatterAdd(rt: Runtime, out: GView, dim: number, index: GView, src: GView): void {
  if (numel(index.shape) === 0) return;
  run(rt, 'scatterAdd', out, src, index, dim, index.shape[dim] ?? 1);
}

export function indexAdd(rt: Runtime, out: GView, dim: number, index: GView, src: GView): void {
  if (numel(index.shape) === 0) return;
  run(rt, 'indexAdd', out, src, index, dim, index.shape[0] ?? 1);
}
