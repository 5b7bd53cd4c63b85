/**
 * One SGD training step of ResNet18 at batch 8 (forward in training mode,
 * cross-entropy, backward, p -= lr·grad), timed over 20 consecutive steps
 * (the first is the warm-up), against PyTorch CPU. The same 20 steps prove
 * the steady state allocates no GPU buffers: the backend's buffersAllocated
 * after step 1 must equal the count after the last step. The first step's
 * loss is compared with PyTorch's on the same weights and batch. One more
 * step runs under the kernels' timestamp profiler: a profile_train line per
 * kernel (ms over its dispatches, count, share of the step's GPU time).
 */
import { fromArray, memory, type Tensor } from '@kiln/core';
import { autotuneState, tunePending } from '@kiln/kernels';
import { outOfTime, type Bench } from '../bench.js';
import { RESNET18_FLOP_PER_IMAGE } from '../cases.js';
import { log } from '../report.js';
import { median } from '../timing.js';
import { KilnResNet18Train } from '../resnet18.js';
import { inputBatch } from '../weights.js';

export async function trainSuite(bench: Bench): Promise<void> {
  const assets = bench.assets();
  const batch = bench.opts.quick ? 2 : 8;
  const steps = bench.opts.quick ? 3 : 20;
  const name = `resnet18 SGD step N=${batch}`;
  if (outOfTime(bench, 'resnet18_train', name)) return;
  const extra: Record<string, unknown> = { steps, weights: assets.source };
  let kilnTiming: { ms: number; minMs: number; runs: number } | null = null;
  let kilnError: string | null = null;

  if (bench.kiln) {
    const backend = bench.kiln;
    const model = new KilnResNet18Train(assets, 'webgpu', assets.sgdLr);
    const input = inputBatch(assets, batch);
    const x = fromArray(input.data, input.shape, { device: 'webgpu' });
    const y = fromArray(Int32Array.from(assets.labels.slice(0, batch)), [batch], { device: 'webgpu' });
    try {
      const firstLoss = async (loss: Tensor) => {
        const value = await loss.item();
        extra.loss = Number(value.toPrecision(6));
        if (assets.torchTrainLoss !== null && batch === 8) extra.lossDiff = Number(Math.abs(value - assets.torchTrainLoss).toPrecision(3));
      };
      // With the autotuner on, one untimed step queues the step's conv shapes (forward, input and
      // weight gradients) and they are tuned before the counted steps, so the buffer count below
      // still starts after every route is fixed.
      let tuningStep = false;
      if (autotuneState(backend)) {
        const loss = model.step(x, y);
        await firstLoss(loss); // the loss PyTorch's first step is compared with
        loss.dispose();
        tuningStep = true;
        const tuned = await tunePending(backend);
        extra.tunedConvs = Object.keys(tuned).length;
        log(`train: tuned ${extra.tunedConvs} conv shapes`);
      }
      const times: number[] = [];
      const allocated: number[] = [];
      for (let i = 0; i < steps; i++) {
        if (i >= 2 && performance.now() > bench.deadline) {
          log(`train: stopping after ${i} steps (time budget)`);
          extra.stoppedEarly = `time budget: ${i} of ${steps} steps`;
          break;
        }
        const t = performance.now();
        const loss = model.step(x, y);
        if (i === 0 && !tuningStep) await firstLoss(loss);
        await backend.sync();
        times.push(performance.now() - t);
        loss.dispose();
        allocated.push(backend.memory().buffersAllocated);
        log(`train step ${i + 1}/${steps}: ${times[i]!.toFixed(0)} ms, buffers allocated ${allocated[i]}`);
      }
      extra.stepsRun = times.length;
      const steady = times.slice(1);
      kilnTiming = { ms: Number(median(steady).toPrecision(5)), minMs: Number(Math.min(...steady).toPrecision(5)), runs: steady.length };
      extra.firstStepMs = Number(times[0]!.toPrecision(5));
      extra.buffersAllocated = { afterStep1: allocated[0], afterLastStep: allocated[allocated.length - 1] };
      extra.buffersAllocatedAfterFirst = allocated[allocated.length - 1]! - allocated[0]!;
      const mem = memory('webgpu');
      extra.memory = { numTensors: mem.numTensors, bytesInUse: mem.bytesInUse, bytesPooled: mem.bytesPooled };
      // One more step under the timestamp profiler (after the steps counted above): which kernels hold the step.
      try {
        const kernels = await backend.profile(async () => {
          const loss = model.step(x, y);
          await backend.sync();
          loss.dispose();
        });
        const total = kernels.reduce((a, k) => a + k.ms, 0);
        for (const k of [...kernels].sort((a, b) => b.ms - a.ms)) {
          bench.reporter.emit({ suite: 'profile_train', case: k.kernel, ms: Number(k.ms.toPrecision(4)), count: k.count, share: `${((100 * k.ms) / total).toFixed(1)}%` });
        }
        bench.reporter.emit({ suite: 'profile_train', case: `${name} total`, ms: Number(total.toPrecision(4)), count: kernels.reduce((a, k) => a + k.count, 0) });
      } catch (e) {
        log(`train profile: ${(e as Error).message.split('\n')[0]}`);
      }
    } catch (e) {
      kilnError = (e as Error).message.split('\n')[0]!.slice(0, 300);
    } finally {
      x.dispose();
      y.dispose();
      model.dispose();
    }
  }

  // The PyTorch step is this target's yardstick: measured even when the Kiln steps used up the time budget.
  const torch = !bench.torch
    ? null
    : assets.source === 'torch'
      ? await bench.torch.time({ kind: 'resnet_train', batch }, bench.policy)
      : { error: `PyTorch assets unavailable: ${assets.unavailable}` };
  bench.reporter.emit({
    suite: 'resnet18_train',
    case: name,
    flop: 3 * RESNET18_FLOP_PER_IMAGE * batch,
    ...(kilnTiming ?? {}),
    ...(kilnError ? { error: kilnError } : {}),
    ...(!bench.kiln ? { error: `kiln webgpu unavailable: ${bench.kilnError}` } : {}),
    ...extra,
    ...(torch ? { peers: { torch } } : {}),
  });
}
