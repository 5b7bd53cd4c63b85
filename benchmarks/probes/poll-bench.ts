/**
 * Reproduces the Dawn polling comparison: the same GPU workload (a small
 * CNN-like chain of convs and a GEMM, then a readback) with Dawn's own
 * busy `setImmediate` polling (pollIntervalMs = 0) and with Kiln's
 * cooperative 1 ms / 4 ms polling. On lavapipe the busy poll takes a core
 * from the driver's worker threads.
 *
 * Not a test (nothing is asserted or timed against a limit). Run with
 *   cd /work/main && npx vitest run -c benchmarks/probes/vitest.config.ts poll-bench
 */
import type { View } from '@kiln/core';
import type { WebGPUBackend } from '../../packages/kernels/src/index.js';
import type { GPUStorage } from '../../packages/kernels/src/pool.js';

function view(be: WebGPUBackend, shape: number[], fill?: number): View<GPUStorage> {
  const size = shape.reduce((a, b) => a * b, 1);
  const storage = be.alloc(size, 'float32');
  if (fill !== undefined) be.write(storage, new Float32Array(size).map((_, i) => Math.sin(i) * fill));
  const strides = shape.map((_, d) => shape.slice(d + 1).reduce((a, b) => a * b, 1));
  return { storage, dtype: 'float32', shape, strides, offset: 0 };
}

/** ms per iteration of the workload for each polling interval (best of `rounds`). */
export async function pollBench(be: WebGPUBackend, intervals = [0, 1, 4], iterations = 10, rounds = 3): Promise<Record<string, number>> {
  const p = { stride: [1, 1] as [number, number], padding: [1, 1] as [number, number], dilation: [1, 1] as [number, number], groups: 1 };
  const x = view(be, [1, 32, 28, 28], 1);
  const w = view(be, [32, 32, 3, 3], 0.05);
  const y1 = view(be, [1, 32, 28, 28]);
  const y2 = view(be, [1, 32, 28, 28]);
  const a = view(be, [1, 256, 256], 0.1);
  const c = view(be, [1, 256, 256]);
  const s = view(be, []);
  const iteration = async () => {
    for (let i = 0; i < 4; i++) {
      be.conv2d(x, w, y1, p, { relu: true });
      be.conv2d(y1, w, y2, p, { residual: x, relu: true });
    }
    be.matmul(a, a, c);
    be.reduce('sum', { ...y2, shape: [y2.storage.size], strides: [1] }, 1, s);
    await be.read(s.storage, 0, 1);
  };
  const saved = be.runtime.pollIntervalMs;
  const result: Record<string, number> = {};
  await iteration();
  for (let r = 0; r < rounds; r++) {
    for (const ms of intervals) {
      be.runtime.pollIntervalMs = ms;
      const t = performance.now();
      for (let i = 0; i < iterations; i++) await iteration();
      const per = (performance.now() - t) / iterations;
      const key = ms === 0 ? 'dawn setImmediate busy poll' : `cooperative ${ms} ms poll`;
      result[key] = Math.min(result[key] ?? Infinity, per);
    }
  }
  be.runtime.pollIntervalMs = saved;
  for (const v of [x, w, y1, y2, a, c, s]) be.release(v.storage);
  return result;
}
