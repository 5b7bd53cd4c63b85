// ResNet18 SGD training step (the train suite's model, benchmarks/src/resnet18.ts)
// on the benchmark's PyTorch assets: a few timed steps, then one step under the
// kernels' timestamp profiler, printed per kernel (ms, dispatches, share) with
// the load average, so a change to one kernel can be read as its share of the
// step on a shared machine. A measurement, not a test.
//   KILN_PROBE_BATCH=8 KILN_PROBE_STEPS=3 npx vitest run -c benchmarks/probes/vitest.config.ts train-step
// KILN_PROBE_TUNE=1 turns the autotuner on (the benchmarks' cache file), as the bench does.
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { it } from 'vitest';
import * as kiln from '@kiln/core';
import { enableAutotune, initWebGPU, tunePending } from '@kiln/kernels';
import { KilnResNet18Train } from '../src/resnet18.js';
import { CACHE_DIR, inputBatch, loadAssets } from '../src/weights.js';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const load = () => loadavg().map((v) => Number(v.toFixed(2)));

it('resnet18 training step: per-kernel profile', async () => {
  const backend = await initWebGPU();
  const tune = process.env.KILN_PROBE_TUNE === '1';
  if (tune) await enableAutotune(backend, { cache: process.env.KILN_TUNE_CACHE ?? join(CACHE_DIR, '..', 'kiln-tune.json') });
  const batch = Number(process.env.KILN_PROBE_BATCH ?? 8);
  const steps = Number(process.env.KILN_PROBE_STEPS ?? 3);
  const assets = loadAssets(process.env.KILN_PYTHON ?? '/usr/bin/python3');
  const model = new KilnResNet18Train(assets, 'webgpu', assets.sgdLr);
  const input = inputBatch(assets, batch);
  const x = kiln.fromArray(input.data, input.shape, { device: 'webgpu' });
  const y = kiln.fromArray(Int32Array.from(assets.labels.slice(0, batch)), [batch], { device: 'webgpu' });
  const load0 = load();
  const first = model.step(x, y);
  const loss = await first.item();
  first.dispose();
  if (tune) await tunePending(backend);
  const times: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t = performance.now();
    model.step(x, y).dispose();
    await backend.sync();
    times.push(performance.now() - t);
  }
  const kernels = await backend.profile(async () => {
    model.step(x, y).dispose();
    await backend.sync();
  });
  const total = kernels.reduce((a, k) => a + k.ms, 0);
  const rows = [...kernels].sort((a, b) => b.ms - a.ms).map((k) => ({ kernel: k.kernel, ms: Number(k.ms.toFixed(1)), count: k.count, share: `${((100 * k.ms) / total).toFixed(1)}%` }));
  console.log(JSON.stringify({
    probe: 'train-step', batch, tune, firstLoss: loss, stepMs: times.map((v) => Math.round(v)), medianMs: Math.round(median(times)),
    profiledGpuMs: Math.round(total), dispatches: kernels.reduce((a, k) => a + k.count, 0),
    loadavg: { start: load0, end: load() }, cpus: cpus().length,
  }));
  console.table(rows);
  x.dispose();
  y.dispose();
  model.dispose();
});
