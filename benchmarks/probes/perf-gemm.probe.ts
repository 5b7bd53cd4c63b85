// GEMM throughput sweep: a measurement, not a test (see README.md here).
import { it } from 'vitest';
import { backend, pair } from '../../packages/kernels/test/helpers.js';
import { gemmOverride } from '../../packages/kernels/src/ops/matmul.js';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

it('gemm GFLOP/s sweep', async () => {
  const be = backend();
  const sizes = (process.env.KILN_PERF_SIZES ?? '256,512,1024').split(',').map(Number);
  const cfgs = JSON.parse(process.env.KILN_PERF_CFGS ?? '[{}]') as Record<string, unknown>[];
  for (const n of sizes) {
    const a = pair('float32', [1, n, n]);
    const b = pair('float32', [1, n, n]);
    const o = pair('float32', [1, n, n]);
    for (let rep = 0; rep < 2; rep++) {
      for (const c of cfgs) {
        Object.assign(gemmOverride, c);
        const reps = Math.max(1, Math.round(2e8 / (n * n * n)));
        be.matmul(a.g, b.g, o.g);
        await be.sync();
        const ts: number[] = [];
        const cs: number[] = [];
        for (let s = 0; s < 5; s++) {
          const t = performance.now();
          const c0 = process.cpuUsage();
          for (let r = 0; r < reps; r++) be.matmul(a.g, b.g, o.g);
          await be.sync();
          const cu = process.cpuUsage(c0);
          ts.push((performance.now() - t) / reps);
          cs.push((cu.user + cu.system) / 1000 / reps);
        }
        for (const k of Object.keys(gemmOverride)) delete (gemmOverride as Record<string, unknown>)[k];
        const ms = median(ts);
        // CPU time of this process (llvmpipe's threads included) is far less sensitive to other jobs' load than wall time.
        const cpuMs = median(cs) / 2;
        console.log(`[perf] n=${n} cfg=${JSON.stringify(c)} wall ${ms.toFixed(1)} ms ${((2 * n ** 3) / ms / 1e6).toFixed(2)} GFLOP/s | cpu/2 ${cpuMs.toFixed(1)} ms ${((2 * n ** 3) / cpuMs / 1e6).toFixed(2)} GFLOP/s`);
      }
    }
  }
}, 1_200_000);
