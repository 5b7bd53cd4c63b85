// ResNet18 eval at batch KILN_PROBE_BATCH (1): the resnet suite's functional
// model (benchmarks/src/resnet18.ts, BN folded on the host) against the quant
// suite's fp32 model (@kiln/resnet's resnet18().eval(), the same weights), in
// interleaved rounds: wall ms, this process's CPU ms / 2 (less sensitive to
// other jobs' load than wall time) and one timestamp profile each, per
// kernel. The two measured 112 vs 86.7 ms in the same bench run. A
// measurement, not a test. KILN_PROBE_TUNE=1: autotuner on with the
// benchmarks' cache file, as the bench runs.
//   KILN_PROBE_TUNE=1 npx vitest run -c benchmarks/probes/vitest.config.ts resnet-eval
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { it } from 'vitest';
import * as kiln from '@kiln/core';
import { enableAutotune, initWebGPU, tunePending } from '@kiln/kernels';
import { resnet18 } from '@kiln/resnet';
import { KilnResNet18Eval } from '../src/resnet18.js';
import { CACHE_DIR, inputBatch, loadAssets } from '../src/weights.js';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

it('resnet18 eval: bench functional model vs @kiln/resnet module', async () => {
  const backend = await initWebGPU();
  if (process.env.KILN_PROBE_TUNE === '1') await enableAutotune(backend, { cache: process.env.KILN_TUNE_CACHE ?? join(CACHE_DIR, '..', 'kiln-tune.json') });
  const batch = Number(process.env.KILN_PROBE_BATCH ?? 1);
  const rounds = Number(process.env.KILN_PROBE_ROUNDS ?? 5);
  const assets = loadAssets(process.env.KILN_PYTHON ?? '/usr/bin/python3');
  const functional = new KilnResNet18Eval(assets, 'webgpu');
  const params = new Map([...assets.params].map(([k, v]) => [k, kiln.fromArray(v.data, v.shape, { device: 'webgpu' })]));
  const module = resnet18({ device: 'webgpu' }).eval();
  module.loadStateDict(params, { strict: false });
  for (const t of params.values()) t.dispose();
  const input = inputBatch(assets, batch);
  const x = kiln.fromArray(input.data, input.shape, { device: 'webgpu' });
  const variants: [string, () => kiln.Tensor][] = [
    ['functional (resnet suite)', () => functional.forward(x)],
    ['module (quant suite)', () => kiln.noGrad(() => module.call(x))],
  ];
  const a = await variants[0]![1]().toArray() as Float32Array;
  const b = await variants[1]![1]().toArray() as Float32Array;
  let maxDiff = 0;
  for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i]! - b[i]!));
  await tunePending(backend);
  const wall = new Map<string, number[]>(variants.map(([n]) => [n, []]));
  const cpu = new Map<string, number[]>(variants.map(([n]) => [n, []]));
  const load0 = loadavg()[0]!;
  for (let r = -1; r < rounds; r++) {
    for (const [name, run] of variants) {
      const c0 = process.cpuUsage();
      const t = performance.now();
      run().dispose();
      await backend.sync();
      const ms = performance.now() - t;
      const cu = process.cpuUsage(c0);
      if (r >= 0) {
        wall.get(name)!.push(ms);
        cpu.get(name)!.push((cu.user + cu.system) / 1000 / 2);
      }
    }
  }
  const profiles: Record<string, Record<string, string>> = {};
  for (const [name, run] of variants) {
    const ks = await backend.profile(async () => {
      run().dispose();
      await backend.sync();
    });
    const total = ks.reduce((s, k) => s + k.ms, 0);
    profiles[name] = Object.fromEntries([['total', `${total.toFixed(1)} ms, ${ks.reduce((s, k) => s + k.count, 0)} dispatches`], ...[...ks].sort((p, q) => q.ms - p.ms).map((k) => [k.kernel, `${k.ms.toFixed(1)} ms x${k.count}`])]);
  }
  console.log(JSON.stringify({
    probe: 'resnet-eval', batch, rounds, logitsMaxDiff: maxDiff,
    wallMs: Object.fromEntries([...wall].map(([n, t]) => [n, Number(median(t).toFixed(1))])),
    cpuHalfMs: Object.fromEntries([...cpu].map(([n, t]) => [n, Number(median(t).toFixed(1))])),
    load: [Number(load0.toFixed(2)), Number(loadavg()[0]!.toFixed(2))],
  }));
  console.log(JSON.stringify(profiles, null, 1));
  x.dispose();
  functional.dispose();
  module.dispose();
});
