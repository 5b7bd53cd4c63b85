/**
 * float16 storage glue: the bytes of a float16 storage (host bit patterns
 * <-> words), and copy() to, from and between float16 views (the
 * elementwise copy kernel between float views, else the unpack/pack
 * kernels of wgsl/half.ts). matmul and the conv primitives read
 * and write float16 views themselves (the GEMM/conv generators' `half`
 * flags; the backend's `nativeFloat16`); every other primitive meets
 * float16 operands through core's float32 stand-ins
 * (core/src/float16-fallback.ts), which convert with this copy.
 */
import { contiguousStrides, type View } from '@kiln/core';
import type { OpContext } from '../backend.js';
import type { GPUStorage } from '../pool.js';
import { grid1d } from '../wgsl/common.js';
import { halfFlatAt, halfKey, halfViewAt, halfWgsl, halfWords } from '../wgsl/half.js';
import { coalesce, numel } from '../views.js';
import { Meta, runElementwise } from './elementwise.js';

type GView = View<GPUStorage>;

/** Host float16 bit patterns as whole words (zero-padded). */
export function halfHostBytes(bits: Uint16Array): Uint8Array {
  const bytes = new Uint8Array(Math.ceil(bits.length / 2) * 4);
  bytes.set(new Uint8Array(bits.buffer, bits.byteOffset, bits.length * 2));
  return bytes;
}

/** The word-aligned byte range holding float16 elements [offset, offset + length), and how many elements to skip in it. */
export function halfRange(offset: number, length: number): { start: number; bytes: number; skip: number } {
  const first = Math.floor(offset / 2);
  const end = Math.ceil((offset + length) / 2);
  return { start: first * 4, bytes: (end - first) * 4, skip: offset - first * 2 };
}

function dispatchHalf(ctx: OpContext, dir: 'pack' | 'unpack', half: GView, flat: GView): void {
  const total = numel(half.shape);
  if (total === 0) return;
  const merged = coalesce(half.shape, [half.strides]);
  const rank = merged.shape.length;
  const meta = new Meta(halfWords(rank));
  meta.u[0] = total;
  meta.set(1, merged.shape);
  meta.u[halfViewAt(rank)] = half.offset;
  meta.set(halfViewAt(rank) + 1, merged.strides[0]!);
  meta.u[halfFlatAt(rank)] = flat.offset;
  const [dst, src] = dir === 'unpack' ? [flat.storage.buffer, half.storage.buffer] : [half.storage.buffer, flat.storage.buffer];
  ctx.rt.dispatch({
    kernel: `half.${dir}`,
    key: halfKey(dir, rank),
    code: () => halfWgsl(dir, rank),
    bindings: [{ buffer: dst, write: true }, { buffer: src }],
    meta: meta.u,
    workgroups: grid1d(total),
  });
}

const isFloat = (d: GView['dtype']) => d === 'float32' || d === 'float16';
const dense = (v: GView) => v.dtype === 'float32' && isDense(v);
function isDense(v: GView): boolean {
  const c = contiguousStrides(v.shape);
  return v.shape.every((d, i) => d === 1 || v.strides[i] === c[i]);
}

/**
 * copy(x, out) when either side is float16. Between float16 and float32
 * views (either way, or float16 to float16: the in-place ops' write-back,
 * casts under autocast) one elementwise kernel reads and writes the words
 * itself (wgsl/elementwise.ts `half`: exact f32 values in, rounded once to
 * nearest even out), so no float32 stage of the tensor's size is taken.
 * Other legs (int casts, packed int8) go through one contiguous f32 stage
 * unless a side already is one; `copyOther` is the backend's copy for them.
 */
export function copyHalf(ctx: OpContext, x: GView, out: GView, copyOther: (a: GView, b: GView) => void): void {
  if (isFloat(x.dtype) && isFloat(out.dtype)) {
    runElementwise(ctx.rt, 'copy', out, [x], 'f32', (v) => [v[0]!, 'f32']);
    return;
  }
  const temps: GPUStorage[] = [];
  const stage = (): GView => {
    const storage = ctx.alloc(numel(out.shape), 'float32');
    temps.push(storage);
    return { storage, dtype: 'float32', shape: out.shape, strides: contiguousStrides(out.shape), offset: 0 };
  };
  try {
    // The f32 values of x, contiguous in out's shape (x is already broadcast to it by core).
    let flat: GView;
    if (x.dtype === 'float16') {
      flat = out.dtype === 'float32' && isDense(out) ? out : stage();
      dispatchHalf(ctx, 'unpack', x, flat);
    } else if (dense(x) && out.dtype === 'float16') {
      flat = x;
    } else {
      flat = stage();
      copyOther(x, flat);
    }
    if (out.dtype === 'float16') dispatchHalf(ctx, 'pack', out, flat);
    else if (flat !== out) copyOther(flat, out);
  } finally {
    for (const t of temps) ctx.release(t);
  }
}
