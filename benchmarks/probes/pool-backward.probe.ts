// Max-pool backward in isolation: ResNet18's stem pool (3x3, stride 2,
// padding 1) at batch KILN_PROBE_BATCH (8: [8, 64, 112, 112] -> 56x56), and
// the other elementwise passes of the relu backward, timed with GPU timestamps
// over interleaved rounds beside the forward pool (the same input: a yardstick
// for the load), best and median per kernel; and relu's backward as the two
// passes it was (le, where) against the one thresholdBackward pass. A
// measurement, not a test.
//   KILN_PROBE_BATCH=8 npx vitest run -c benchmarks/probes/vitest.config.ts pool-backward
import { loadavg } from 'node:os';
import { it } from 'vitest';
import * as kiln from '@kiln/core';
import { initWebGPU } from '@kiln/kernels';
import { thresholdBackward } from '../../packages/core/src/ops/unary.js';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

it('maxPool2d backward vs forward (GPU timestamps)', async () => {
  const backend = await initWebGPU();
  const batch = Number(process.env.KILN_PROBE_BATCH ?? 8);
  const rounds = Number(process.env.KILN_PROBE_ROUNDS ?? 5);
  const x = kiln.randn([batch, 64, 112, 112], { device: 'webgpu', requiresGrad: true });
  const times = new Map<string, number[]>();
  const load0 = loadavg()[0]!;
  for (let r = -1; r < rounds; r++) {
    const kernels = await backend.profile(async () => {
      kiln.tidy(() => {
        const y = kiln.maxPool2d(x, 3, { stride: 2, padding: 1 });
        y.sum().backward();
      });
      await backend.sync();
    });
    x.grad?.dispose();
    x.grad = null;
    if (r < 0) continue;
    for (const k of kernels) {
      if (!times.has(k.kernel)) times.set(k.kernel, []);
      times.get(k.kernel)!.push(k.ms);
    }
  }
  const out = Object.fromEntries([...times].map(([k, t]) => [k, { best: Number(Math.min(...t).toFixed(1)), median: Number(median(t).toFixed(1)) }]));
  const bwd = times.get('pool.maxBackward')!;
  const fwd = times.get('pool.max')!;
  console.log(JSON.stringify({
    probe: 'pool-backward', shape: [batch, 64, 112, 112], rounds, ms: out,
    backwardOverForward: Number((median(bwd) / median(fwd)).toFixed(2)), load: [Number(load0.toFixed(2)), Number(loadavg()[0]!.toFixed(2))],
  }));
  x.dispose();
});

it('relu backward: le + where (two passes) vs thresholdBackward (one)', async () => {
  const backend = await initWebGPU();
  const batch = Number(process.env.KILN_PROBE_BATCH ?? 8);
  const rounds = Number(process.env.KILN_PROBE_ROUNDS ?? 5);
  const y = kiln.randn([batch, 64, 112, 112], { device: 'webgpu' }).relu();
  const g = kiln.randn([batch, 64, 112, 112], { device: 'webgpu' });
  const times = new Map<string, number[]>();
  for (let r = -1; r < rounds; r++) {
    const kernels = await backend.profile(async () => {
      kiln.tidy(() => {
        kiln.where(y.le(0), 0, g);
        thresholdBackward(g, y, 0);
      });
      await backend.sync();
    });
    if (r < 0) continue;
    for (const k of kernels) {
      if (!times.has(k.kernel)) times.set(k.kernel, []);
      times.get(k.kernel)!.push(k.ms);
    }
  }
  const med = (k: string) => median(times.get(k) ?? [0]);
  console.log(JSON.stringify({
    probe: 'relu-backward', shape: [batch, 64, 112, 112], rounds,
    ms: { le: med('binary.le'), where: med('where'), leWhere: Number((med('binary.le') + med('where')).toFixed(1)), thresholdBackward: med('thresholdBackward') },
    load: Number(loadavg()[0]!.toFixed(2)),
  }));
  y.dispose();
  g.dispose();
});

// The forward max pool (compile-time geometry, no runtime division) against the
// avg pool (the same 3x3 s2 window walked with runtime geometry): this process's
// CPU ms / 2 per pass over 10 passes, interleaved rounds.
it('maxPool2d vs avgPool2d forward, process CPU time', async () => {
  const backend = await initWebGPU();
  const batch = Number(process.env.KILN_PROBE_BATCH ?? 8);
  const rounds = Number(process.env.KILN_PROBE_ROUNDS ?? 5);
  const x = kiln.randn([batch, 64, 112, 112], { device: 'webgpu' });
  const ops: [string, () => unknown][] = [
    ['maxPool2d', () => kiln.maxPool2d(x, 3, { stride: 2, padding: 1 })],
    ['avgPool2d', () => kiln.avgPool2d(x, 3, { stride: 2, padding: 1 })],
  ];
  const cpu = new Map<string, number[]>(ops.map(([n]) => [n, []]));
  for (let r = -1; r < rounds; r++) {
    for (const [name, op] of ops) {
      const c0 = process.cpuUsage();
      for (let i = 0; i < 10; i++) kiln.tidy(() => { op(); });
      await backend.sync();
      const cu = process.cpuUsage(c0);
      if (r >= 0) cpu.get(name)!.push((cu.user + cu.system) / 1000 / 2 / 10);
    }
  }
  console.log(JSON.stringify({ probe: 'pool-forward-cpu', shape: [batch, 64, 112, 112], cpuHalfMsPerPass: Object.fromEntries([...cpu].map(([k, t]) => [k, `median ${median(t).toFixed(2)}, best ${Math.min(...t).toFixed(2)}`])), load: Number(loadavg()[0]!.toFixed(2)) }));
  x.dispose();
});
