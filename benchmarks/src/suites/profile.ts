/**
 * Where ResNet18 inference spends its time, batch 1, eval:
 *
 * - per kernel: one forward under the kernels' timestamp profiler, a line
 *   per kernel (total ms over its dispatches, dispatch count, share of the
 *   GPU total) and a total line against the flushed wall clock;
 * - per stage: each stage (stem, pool, each BasicBlock, head) run and
 *   flushed on its own (median of a few forwards, GFLOP/s from its conv
 *   FLOP), then once under the profiler (gpuMs): which layers, i.e. which
 *   conv shapes, hold the time.
 */
import { fromArray, noGrad, tidy, type Tensor } from '@kiln/core';
import { outOfTime, type Bench } from '../bench.js';
import { log } from '../report.js';
import { median } from '../timing.js';
import { KilnResNet18Eval } from '../resnet18.js';
import { inputBatch } from '../weights.js';

const sig = (x: number) => Number(x.toPrecision(4));
const firstLine = (e: unknown) => (e as Error).message.split('\n')[0]!.slice(0, 300);

export async function profileSuite(bench: Bench): Promise<void> {
  const backend = bench.kiln;
  if (!backend) {
    bench.reporter.emit({ suite: 'profile', case: 'resnet18 eval N=1', error: `kiln webgpu unavailable: ${bench.kilnError}` });
    return;
  }
  if (outOfTime(bench, 'profile', 'resnet18 eval N=1')) return;
  log('profile: resnet18 eval N=1');
  const assets = bench.assets();
  const model = new KilnResNet18Eval(assets, 'webgpu');
  const input = inputBatch(assets, 1);
  const x = fromArray(input.data, input.shape, { device: 'webgpu' });
  try {
    model.forward(x).dispose(); // warm-up: pipelines compiled, pool filled
    await backend.sync();

    // Per stage: flushed wall clock (median) and one run under the timestamp profiler.
    const stages = model.stages();
    const times = stages.map(() => [] as number[]);
    const gpu = stages.map(() => Number.NaN);
    const flop = stages.map(() => 0);
    const runs = bench.opts.quick ? 1 : 3;
    for (let r = 0; r <= runs; r++) {
      let h: Tensor = x;
      for (const [i, stage] of stages.entries()) {
        let next: Tensor | null = null;
        if (r === runs) {
          // The last pass is the profiled one.
          try {
            const kernels = await backend.profile(async () => {
              next = noGrad(() => tidy(() => stage.run(h)));
              await backend.sync();
            });
            gpu[i] = kernels.reduce((s, k) => s + k.ms, 0);
          } catch (e) {
            log(`profile ${stage.name}: ${firstLine(e)}`);
          }
        } else {
          const t = performance.now();
          next = noGrad(() => tidy(() => stage.run(h)));
          await backend.sync();
          times[i]!.push(performance.now() - t);
        }
        if (!next) throw new Error(`stage ${stage.name} produced nothing`);
        const out: Tensor = next;
        flop[i] = stage.flop(h.shape, out.shape);
        if (h !== x) h.dispose();
        h = out;
      }
      h.dispose();
    }
    const stageMs = times.map(median);
    const stageTotal = stageMs.reduce((a, b) => a + b, 0);
    for (const [i, stage] of stages.entries()) {
      bench.reporter.emit({
        suite: 'profile_stage',
        case: stage.name,
        ms: sig(stageMs[i]!),
        flop: flop[i] || undefined,
        gpuMs: Number.isNaN(gpu[i]!) ? undefined : sig(gpu[i]!),
        share: `${((100 * stageMs[i]!) / stageTotal).toFixed(1)}%`,
      });
    }

    // Per kernel, GPU timestamps.
    const t = performance.now();
    model.forward(x).dispose();
    await backend.sync();
    const wallMs = performance.now() - t;
    try {
      const kernels = await backend.profile(async () => {
        model.forward(x).dispose();
        await backend.sync();
      });
      const total = kernels.reduce((s, k) => s + k.ms, 0);
      for (const k of kernels) {
        bench.reporter.emit({ suite: 'profile', case: k.kernel, ms: sig(k.ms), count: k.count, share: `${((100 * k.ms) / total).toFixed(1)}%` });
      }
      bench.reporter.emit({
        suite: 'profile',
        case: 'resnet18 eval N=1 total',
        ms: sig(total),
        count: kernels.reduce((s, k) => s + k.count, 0),
        wallMs: sig(wallMs),
        timing: backend.runtime.profiler.usesTimestamps ? 'timestamp-query' : 'wall-clock per submit',
      });
    } catch (e) {
      bench.reporter.emit({ suite: 'profile', case: 'resnet18 eval N=1 (kernel profiler)', wallMs: sig(wallMs), error: firstLine(e) });
    }
  } catch (e) {
    bench.reporter.emit({ suite: 'profile', case: 'resnet18 eval N=1', error: firstLine(e) });
  } finally {
    x.dispose();
    model.dispose();
  }
}
