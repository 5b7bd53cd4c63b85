/**
 * Test helpers: a WebGPU backend (or a skip with one clear message), and
 * paired views on the WebGPU backend and core's CPU reference backend
 * holding the same data, so each primitive is checked against the CPU
 * loops on exactly the same strided inputs.
 */
import { CpuBackend, type DType, type TypedArray, type View } from '@kiln/core';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { requireWebGPU } from '@kiln/test-helpers';
import { initWebGPU, type StrategyClass, type WebGPUBackend } from '../src/index.js';
import type { GPUStorage } from '../src/pool.js';

/**
 * The shared WebGPU backend, or null when this machine has no adapter; the
 * shared rule (tests/helpers) prints why, or fails under KILN_REQUIRE_WEBGPU=1.
 */
export const gpu: WebGPUBackend | null = (await requireWebGPU()) ? await initWebGPU() : null;
/** `describe` when WebGPU is available, `describe.skip` otherwise. */
export const gpuDescribe = gpu ? describe : describe.skip;
export const cpu = new CpuBackend();

/**
 * `gpuDescribe` once per kernel strategy class ('cpu-like', then 'gpu'), the
 * backend switched to that class for the block and restored after it: the
 * same checks cover the kernels lavapipe gets and those a real GPU gets.
 */
export function describeStrategies(title: string, fn: (strategy: StrategyClass) => void): void {
  for (const strategy of ['cpu-like', 'gpu'] as const) {
    gpuDescribe(`${title} [${strategy} strategy]`, () => {
      let before: StrategyClass = 'cpu-like';
      beforeAll(() => {
        before = backend().tuning.strategy;
        backend().setStrategy(strategy);
      });
      afterAll(() => {
        backend().setStrategy(before);
      });
      fn(strategy);
    });
  }
}

/** The WebGPU backend; only call inside gpuDescribe blocks. */
export function backend(): WebGPUBackend {
  if (!gpu) throw new Error('no WebGPU backend');
  return gpu;
}

/** Deterministic pseudo-random numbers (xorshift) so failures reproduce. */
export function rng(seed = 1): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s / 4294967296;
  };
}

export function hostArray(dtype: DType, n: number, gen: (i: number) => number): TypedArray {
  const a = dtype === 'float32' ? new Float32Array(n) : dtype === 'int32' ? new Int32Array(n) : dtype === 'int8' ? new Int8Array(n) : new Uint8Array(n);
  for (let i = 0; i < n; i++) a[i] = gen(i);
  return a;
}

/** Random data suitable for `dtype`. */
export function randomData(dtype: DType, n: number, seed = 1): TypedArray {
  const r = rng(seed);
  switch (dtype) {
    case 'float32': return hostArray(dtype, n, () => r() * 4 - 2);
    case 'int32': return hostArray(dtype, n, () => Math.floor(r() * 21) - 10);
    case 'int8': return hostArray(dtype, n, () => Math.floor(r() * 256) - 128);
    case 'uint8': return hostArray(dtype, n, () => Math.floor(r() * 256));
    case 'bool': return hostArray(dtype, n, () => (r() < 0.5 ? 1 : 0));
    case 'float16': throw new Error('randomData: float16 kernels are tested through core tensors (tests/float16.storage.test.ts)');
  }
}

export interface Pair {
  g: View<GPUStorage>;
  c: View;
}

export interface Layout {
  strides?: number[];
  offset?: number;
  /** Storage elements (default: just enough for the view). */
  size?: number;
}

function contiguous(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) { s[d] = acc; acc *= shape[d]; }
  return s;
}

/** Same storage contents and view on both backends; `data` fills the whole storage. */
export function pair(dtype: DType, shape: number[], layout: Layout = {}, data?: TypedArray | ((n: number) => TypedArray)): Pair {
  const strides = layout.strides ?? contiguous(shape);
  const offset = layout.offset ?? 0;
  const extent = shape.some((s) => s === 0) ? 0 : 1 + shape.reduce((a, s, d) => a + (s - 1) * strides[d], 0);
  const size = layout.size ?? offset + extent;
  const values = typeof data === 'function' ? data(size) : data ?? randomData(dtype, size, size * 7 + shape.length);
  const gs = backend().alloc(size, dtype);
  backend().write(gs, values);
  const cs = cpu.alloc(size, dtype);
  cpu.write(cs, values);
  return { g: { storage: gs, dtype, shape, strides, offset }, c: { storage: cs, dtype, shape, strides, offset } };
}

/** An output pair pre-filled with a sentinel so unwritten elements show up. */
export function outPair(dtype: DType, shape: number[], layout: Layout = {}): Pair {
  return pair(dtype, shape, layout, (n) => hostArray(dtype, n, () => (dtype === 'float32' ? -777 : dtype === 'bool' ? 1 : 77)));
}

/** Reads both storages of `p` whole and compares (floats within tolerance, NaN == NaN; ints exactly). */
export async function expectSame(p: Pair, tol = 1e-5): Promise<void> {
  const size = p.g.storage.size;
  const got = await backend().read(p.g.storage, 0, size);
  const want = await cpu.read(p.c.storage as never, 0, size);
  expect(got.constructor).toBe(want.constructor);
  for (let i = 0; i < size; i++) {
    const a = got[i];
    const b = want[i];
    if (Number.isNaN(b)) {
      if (!Number.isNaN(a)) expect.fail(`element ${i}: got ${a}, want NaN`);
      continue;
    }
    if (p.g.dtype === 'float32') {
      if (!(Math.abs(a - b) <= tol * (1 + Math.abs(b))) && a !== b) expect.fail(`element ${i}: got ${a}, want ${b} (tol ${tol})`);
    } else if (a !== b) expect.fail(`element ${i}: got ${a}, want ${b}`);
  }
}

/** Releases the GPU storages of pairs. */
export function free(...pairs: Pair[]): void {
  for (const p of pairs) backend().release(p.g.storage);
}
