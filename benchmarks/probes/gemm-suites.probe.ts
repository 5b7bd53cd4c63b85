// Why the gemm suite's 1024³ case measured slower than the quant suite's fp32
// 1024³ case in the same bench run (30.5 vs 41.9 GFLOP/s, identical code:
// randn inputs, a.matmul(b) under tidy, then sync). Each round times the
// bench's runner on fresh inputs, in the situations the two cases meet:
// 'first' (right after the 256³/512³ cases, as in the gemm suite) and after
// the buffer pool has held many other buffers ('churned', as in the quant
// suite, which runs after ResNet18 and training). Reported per round: wall
// ms and this process's CPU ms / 2 (llvmpipe's threads included; far less
// sensitive to other jobs' load than wall time), and the buffers' offsets
// and sizes. A measurement, not a test.
//   npx vitest run -c benchmarks/probes/vitest.config.ts gemm-suites
import { loadavg } from 'node:os';
import { it } from 'vitest';
import * as kiln from '@kiln/core';
import { initWebGPU } from '@kiln/kernels';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

it('gemm 1024³: gemm-suite vs quant-suite conditions', async () => {
  const backend = await initWebGPU();
  const runs = Number(process.env.KILN_PROBE_RUNS ?? 6);
  const time = async (n: number, label: string) => {
    const a = kiln.randn([n, n], { device: 'webgpu' });
    const b = kiln.randn([n, n], { device: 'webgpu' });
    const run = async () => {
      kiln.tidy(() => { a.matmul(b); });
      await backend.sync();
    };
    await run(); // warm-up, as the bench's policy
    const wall: number[] = [];
    const cpu: number[] = [];
    for (let i = 0; i < runs; i++) {
      const c0 = process.cpuUsage();
      const t = performance.now();
      await run();
      wall.push(performance.now() - t);
      const cu = process.cpuUsage(c0);
      cpu.push((cu.user + cu.system) / 1000 / 2);
    }
    const gpu = await backend.profile(run);
    a.dispose();
    b.dispose();
    const line = { label, n, wallMs: Number(median(wall).toFixed(1)), cpuHalfMs: Number(median(cpu).toFixed(1)), gpuMs: Number(gpu.reduce((s, k) => s + k.ms, 0).toFixed(1)), load: Number(loadavg()[0]!.toFixed(2)) };
    console.log(JSON.stringify(line));
    return line;
  };
  const churn = () => {
    // Buffers of the sizes ResNet18 training holds, allocated and released, as the later suites leave the pool.
    const held: kiln.Tensor[] = [];
    for (let i = 0; i < 40; i++) held.push(kiln.zeros([((i * 7919) % 64) + 1, 64, 56, 56], { device: 'webgpu' }));
    for (const t of held) t.dispose();
  };
  const rounds = Number(process.env.KILN_PROBE_ROUNDS ?? 3);
  for (let r = 0; r < rounds; r++) {
    await time(256, 'first');
    await time(512, 'first');
    await time(1024, 'first (after 256, 512: the gemm suite)');
    churn();
    await time(1024, 'churned (pool held other buffers: the quant suite)');
    await time(1024, 'again');
  }
});
