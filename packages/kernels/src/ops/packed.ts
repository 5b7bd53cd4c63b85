/**
 * Packed 8-bit storage glue: host <-> packed words, the unpack/pack kernels
 * (wgsl/packed.ts), and `withWords`, which lets a primitive written for one
 * word per element run on packed operands: packed inputs are unpacked into
 * contiguous int32 stand-ins, packed outputs are computed into int32
 * stand-ins and packed back (low byte: PyTorch's wrapping cast).
 */
import type { DType, TypedArray, View } from '@kiln/core';
import { contiguousStrides } from '@kiln/core';
import type { OpContext } from '../backend.js';
import type { GPUStorage } from '../pool.js';
import { grid1d } from '../wgsl/common.js';
import { packedKey, packedViewAt, packedWgsl, packedWords } from '../wgsl/packed.js';
import { coalesce, numel } from '../views.js';
import { Meta } from './elementwise.js';

type GView = View<GPUStorage>;

/** True for dtypes stored 4 per u32 word on the GPU. */
export function isPacked(dtype: DType): boolean {
  return dtype === 'int8' || dtype === 'uint8';
}

/** Bytes of GPU memory `size` elements of `dtype` take (whole words). */
export function storageBytes(size: number, dtype: DType): number {
  // float16: 2 per word (ops/half.ts).
  if (dtype === 'float16') return Math.ceil(size / 2) * 4;
  return isPacked(dtype) ? Math.ceil(size / 4) * 4 : size * 4;
}

/** Host int8/uint8 data as packed words, zero-padded to a whole word. */
export function packHost(data: TypedArray): Uint8Array {
  const bytes = new Uint8Array(Math.ceil(data.length / 4) * 4);
  bytes.set(new Uint8Array(data.buffer, data.byteOffset, data.length));
  return bytes;
}

/** The word-aligned byte range a read of elements [offset, offset + length) of packed storage needs. */
export function packedRange(offset: number, length: number): { start: number; bytes: number; skip: number } {
  const start = Math.floor(offset / 4) * 4;
  const end = Math.ceil((offset + length) / 4) * 4;
  return { start, bytes: end - start, skip: offset - start };
}

function dispatchPacked(ctx: OpContext, dir: 'pack' | 'unpack', view: GView, words: GPUStorage): void {
  const total = numel(view.shape);
  if (total === 0) return;
  const merged = coalesce(view.shape, [view.strides]);
  const rank = merged.shape.length;
  const signed = view.dtype === 'int8';
  const meta = new Meta(packedWords(rank));
  meta.u[0] = total;
  meta.set(1, merged.shape);
  meta.u[packedViewAt(rank)] = view.offset;
  meta.set(packedViewAt(rank) + 1, merged.strides[0]);
  const [dst, src] = dir === 'unpack' ? [words.buffer, view.storage.buffer] : [view.storage.buffer, words.buffer];
  ctx.rt.dispatch({
    kernel: dir,
    key: packedKey(dir, rank, signed),
    code: () => packedWgsl(dir, rank, signed),
    bindings: [{ buffer: dst, write: true }, { buffer: src }],
    meta: meta.u,
    workgroups: grid1d(total),
  });
}

/** A contiguous int32 view of `shape` on fresh storage. */
function wordView(ctx: OpContext, shape: readonly number[]): GView {
  return { storage: ctx.alloc(numel(shape), 'int32'), dtype: 'int32', shape, strides: contiguousStrides(shape), offset: 0 };
}

/** A packed view's elements, widened to a contiguous int32 view (caller releases its storage). */
export function unpackView(ctx: OpContext, view: GView): GView {
  const w = wordView(ctx, view.shape);
  dispatchPacked(ctx, 'unpack', view, w.storage);
  return w;
}

/** Writes the low bytes of contiguous int32 `words` (shape = dst.shape) into the packed view `dst`. */
export function packInto(ctx: OpContext, words: GView, dst: GView): void {
  dispatchPacked(ctx, 'pack', dst, words.storage);
}

/**
 * Runs `fn` with every packed operand replaced by an int32 stand-in.
 * `inputs` are read only; `outputs` are written (and read first when
 * `readOutputs`, as scatterAdd/indexAdd do), then packed back.
 */
export function withWords<I extends (GView | number)[], O extends GView[]>(
  ctx: OpContext,
  inputs: [...I],
  outputs: [...O],
  readOutputs: boolean,
  fn: (inputs: I, outputs: O) => void,
): void {
  const temps: GPUStorage[] = [];
  const widen = (v: GView, read: boolean): GView => {
    const w = read ? unpackView(ctx, v) : wordView(ctx, v.shape);
    temps.push(w.storage);
    return w;
  };
  const ins = inputs.map((v) => (typeof v !== 'number' && isPacked(v.dtype) ? widen(v, true) : v)) as I;
  const outs = outputs.map((v) => (isPacked(v.dtype) ? widen(v, readOutputs) : v)) as O;
  fn(ins, outs);
  outputs.forEach((v, i) => {
    if (isPacked(v.dtype)) packInto(ctx, outs[i]!, v);
  });
  for (const t of temps) ctx.release(t);
}

/** True when any operand is a packed view. */
export function anyPacked(...views: (GView | number | undefined)[]): boolean {
  return views.some((v) => v !== undefined && typeof v !== 'number' && isPacked(v.dtype));
}
