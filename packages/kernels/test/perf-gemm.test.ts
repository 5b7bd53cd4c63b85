// GEMM throughput sweep, run only with KILN_PERF=1: it measures, it does not test.
import { it } from 'vitest';
import { backend, gpu, pair } from './helpers.js';
import { gemmTuning } from '../src/ops/matmul.js';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

it.skipIf(!gpu || process.env.KILN_PERF !== '1')('gemm GFLOP/s sweep (KILN_PERF=1 to run)', async () => {
  const be = backend();
  const sizes = (process.env.KILN_PERF_SIZES ?? '256,512,1024').split(',').map(Number);
  const cfgs = JSON.parse(process.env.KILN_PERF_CFGS ?? '[{}]') as Record<string, unknown>[];
  for (const n of sizes) {
    const a = pair('float32', [1, n, n]);
    const b = pair('float32', [1, n, n]);
    const o = pair('float32', [1, n, n]);
    for (let rep = 0; rep < 2; rep++) {
      for (const c of cfgs) {
        const saved = { ...gemmTuning };
        Object.assign(gemmTuning, c);
        const reps = Math.max(1, Math.round(2e8 / (n * n * n)));
        be.matmul(a.g, b.g, o.g);
        await be.sync();
        const ts: number[] = [];
        for (let s = 0; s < 5; s++) {
          const t = performance.now();
          for (let r = 0; r < reps; r++) be.matmul(a.g, b.g, o.g);
          await be.sync();
          ts.push((performance.now() - t) / reps);
        }
        Object.assign(gemmTuning, saved);
        const ms = median(ts);
        console.log(`[perf] n=${n} cfg=${JSON.stringify(c)} ${ms.toFixed(1)} ms ${((2 * n ** 3) / ms / 1e6).toFixed(2)} GFLOP/s`);
      }
    }
  }
}, 1_200_000);
