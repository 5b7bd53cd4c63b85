/** GEMM: C = A·B for square float32 matrices, GFLOP/s and ms. */
import { randn } from '@kiln/core';
import { kilnRunner, measureCase, type Bench } from '../bench.js';

export async function gemmSuite(bench: Bench): Promise<void> {
  const sizes = bench.opts.quick ? [256, 512] : [256, 512, 1024, 2048];
  for (const n of sizes) {
    await measureCase(bench, {
      suite: 'gemm',
      name: `gemm ${n}x${n}x${n}`,
      flop: 2 * n ** 3,
      gpuTime: true,
      kiln: bench.kiln
        ? () => {
            const a = randn([n, n], { device: 'webgpu' });
            const b = randn([n, n], { device: 'webgpu' });
            return kilnRunner(bench.kiln!, [a, b], () => a.matmul(b));
          }
        : null,
      tfjs: bench.tfjs ? () => bench.tfjs!.gemm(n) : null,
      torch: { kind: 'gemm', n },
    });
  }
}
