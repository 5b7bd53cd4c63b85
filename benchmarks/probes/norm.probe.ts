// Training-mode batch norm forward + backward at ResNet18's batch-8 stem
// shape [8, 64, 112, 112], layer2's [8, 128, 28, 28] and layer3's [8, 256, 14, 14], GPU timestamps per
// kernel over interleaved rounds: the element kernels (affine,
// backwardInput) on their (S-blocks, C, N) plane grid against the flat 1-D
// grid that divides per element (normOverride.grid = 'flat'). The
// reductions (stats, backwardReduce) have one form. (Planes of under half a
// 256-thread row, layer4's 7x7, take the flat grid: ops/norm.ts.) A measurement, not a test.
//   npx vitest run -c benchmarks/probes/vitest.config.ts norm
import { loadavg } from 'node:os';
import { it } from 'vitest';
import * as kiln from '@kiln/core';
import { initWebGPU } from '@kiln/kernels';
import { normOverride } from '../../packages/kernels/src/ops/norm.js';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

it('batch norm kernels: plane grid vs flat grid', async () => {
  const backend = await initWebGPU();
  const rounds = Number(process.env.KILN_PROBE_ROUNDS ?? 4);
  for (const shape of [[8, 64, 112, 112], [8, 128, 28, 28], [8, 256, 14, 14]]) {
    const C = shape[1]!;
    const x = kiln.randn(shape, { device: 'webgpu', requiresGrad: true });
    const w = kiln.ones([C], { device: 'webgpu', requiresGrad: true });
    const b = kiln.zeros([C], { device: 'webgpu', requiresGrad: true });
    const times = new Map<string, number[]>();
    for (let r = -1; r < rounds; r++) {
      for (const grid of ['planes', 'flat'] as const) {
        normOverride.grid = grid;
        const ks = await backend.profile(async () => {
          kiln.tidy(() => { kiln.batchNorm(x, null, null, { weight: w, bias: b, training: true }).sum().backward(); });
          await backend.sync();
        });
        for (const t of [x, w, b]) { t.grad?.dispose(); t.grad = null; }
        if (r < 0) continue;
        for (const k of ks.filter((k) => k.kernel.startsWith('norm.'))) {
          const key = `${grid} ${k.kernel}`;
          if (!times.has(key)) times.set(key, []);
          times.get(key)!.push(k.ms);
        }
      }
    }
    delete normOverride.grid;
    console.log(JSON.stringify({ probe: 'norm', shape, rounds, ms: Object.fromEntries([...times].sort().map(([k, t]) => [k, `median ${median(t).toFixed(1)}, best ${Math.min(...t).toFixed(1)}`])), load: Number(loadavg()[0]!.toFixed(2)) }));
    for (const t of [x, w, b]) t.dispose();
  }
});

// CPU time is far less sensitive to other jobs than GPU timestamps on lavapipe (a
// preempted dispatch keeps its clock running): eval-mode batch norm is one
// channelAffine pass, timed as this process's CPU ms / 2 over 10 passes.
it('channelAffine: plane grid vs flat grid, process CPU time', async () => {
  const backend = await initWebGPU();
  const rounds = Number(process.env.KILN_PROBE_ROUNDS ?? 4);
  for (const shape of [[8, 64, 112, 112], [8, 128, 28, 28], [8, 256, 14, 14]]) {
    const C = shape[1]!;
    const x = kiln.randn(shape, { device: 'webgpu' });
    const rm = kiln.zeros([C], { device: 'webgpu' });
    const rv = kiln.ones([C], { device: 'webgpu' });
    const cpu = new Map<string, number[]>();
    for (let r = -1; r < rounds; r++) {
      for (const grid of ['planes', 'flat'] as const) {
        normOverride.grid = grid;
        const c0 = process.cpuUsage();
        for (let i = 0; i < 10; i++) kiln.tidy(() => { kiln.batchNorm(x, rm, rv, { training: false }); });
        await backend.sync();
        const cu = process.cpuUsage(c0);
        if (r >= 0) {
          if (!cpu.has(grid)) cpu.set(grid, []);
          cpu.get(grid)!.push((cu.user + cu.system) / 1000 / 2 / 10);
        }
      }
    }
    delete normOverride.grid;
    console.log(JSON.stringify({ probe: 'norm-affine-cpu', shape, cpuHalfMsPerPass: Object.fromEntries([...cpu].map(([k, t]) => [k, `median ${median(t).toFixed(2)}, best ${Math.min(...t).toFixed(2)}`])), load: Number(loadavg()[0]!.toFixed(2)) }));
    for (const t of [x, rm, rv]) t.dispose();
  }
});
