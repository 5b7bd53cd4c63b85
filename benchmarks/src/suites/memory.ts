/**
 * Memory of one ResNet18 training step (SGD, batch 16, 224x224, WebGPU)
 * under the three out-of-memory remedies: float32 baseline, activation
 * checkpointing per layer (each of layer1..layer4: resnet18's 'stage'
 * mode), autocast float16 (with GradScaler), and both.
 * For each it reports the pool's high-water mark over the step
 * (memory().peakBytesInUse: weights, gradients, activations and kernel
 * scratch), the activation bytes held between forward and backward, and the
 * step time. Then, for a byte budget (--memory-budget, default 2GiB), the
 * largest batch that fits with each technique: once activations dominate,
 * peak bytes grow linearly with the batch (weights, gradients and cached
 * kernel data are fixed, activations per sample), so the peaks at the batch
 * and at half of it give the line, and the budget gives the batch. (At
 * batches of 1-2 the fixed part dominates and the peak hardly moves, so
 * small batches would not give the slope.)
 */
import { autocast, crossEntropy, fromArray, memory, randn, resetPeakMemoryStats, tidy } from '@kiln/core';
import { GradScaler, optim } from '@kiln/nn';
import { resnet18, type CheckpointMode } from '@kiln/resnet';
import { outOfTime, type Bench } from '../bench.js';
import { log } from '../report.js';

/** One configuration of the step. */
export interface MemoryConfig {
  name: string;
  checkpoint: CheckpointMode;
  autocast: boolean;
}

/** The four configurations, baseline first. */
export const MEMORY_CONFIGS: readonly MemoryConfig[] = [
  { name: 'float32', checkpoint: 'none', autocast: false },
  { name: 'checkpoint per layer', checkpoint: 'stage', autocast: false },
  { name: 'autocast float16', checkpoint: 'none', autocast: true },
  { name: 'checkpoint + autocast', checkpoint: 'stage', autocast: true },
];

/** What one measured step used. */
export interface StepMemory {
  /** High-water mark of the storage pool over the step (bytes). */
  peakBytes: number;
  /** Bytes held right after the forward minus before it: the activations saved for backward (and the logits). */
  activationBytes: number;
  /** Bytes held before the step: weights, optimizer state, the batch. */
  baseBytes: number;
  ms: number;
}

/**
 * Runs `steps` SGD steps of a fresh ResNet18 at `batch` x 3 x `size`^2 on
 * `device` under `cfg` and measures the last one (the first allocates the
 * gradients, which later steps reuse).
 */
export async function measureStep(device: string, cfg: MemoryConfig, batch: number, size: number, steps = 2): Promise<StepMemory> {
  const model = resnet18({ device, checkpoint: cfg.checkpoint }).train();
  const opt = new optim.SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
  const scaler = new GradScaler({ enabled: cfg.autocast });
  const x = randn([batch, 3, size, size], { device });
  const y = fromArray(Int32Array.from({ length: batch }, (_, i) => (i * 37) % 1000), [batch], { dtype: 'int32', device });
  let result: StepMemory | null = null;
  try {
    for (let s = 0; s < steps; s++) {
      opt.zeroGrad({ setToNone: false });
      await memorySync(device);
      resetPeakMemoryStats(device);
      const baseBytes = memory(device).bytesInUse;
      const t0 = performance.now();
      const loss = tidy(() => (cfg.autocast ? autocast(() => crossEntropy(model.call(x), y)) : crossEntropy(model.call(x), y)));
      const activationBytes = memory(device).bytesInUse - baseBytes;
      tidy(() => scaler.scale(loss).backward());
      await scaler.step(opt);
      scaler.update();
      await loss.item();
      await memorySync(device);
      const ms = performance.now() - t0;
      loss.dispose();
      result = { peakBytes: memory(device).peakBytesInUse, activationBytes, baseBytes, ms };
    }
  } finally {
    x.dispose();
    y.dispose();
    opt.dispose();
    model.dispose();
  }
  return result!;
}

async function memorySync(device: string): Promise<void> {
  const t = randn([1], { device });
  await t.toArray();
  t.dispose();
}

/** The largest batch whose peak fits `budget`, from the peaks at two batches (linear in the batch); 0 if none. */
export function largestBatch(budget: number, a: { batch: number; peak: number }, b: { batch: number; peak: number }): number {
  const perSample = (b.peak - a.peak) / (b.batch - a.batch);
  const fixed = a.peak - perSample * a.batch;
  if (!(perSample > 0)) return 0;
  return Math.max(0, Math.floor((budget - fixed) / perSample));
}

const MiB = (n: number) => Number((n / 2 ** 20).toFixed(1));

/** The `memory` suite of `npm run bench` (see the file comment). */
export async function memorySuite(bench: Bench): Promise<void> {
  const batch = bench.opts.quick ? 2 : 16;
  const size = bench.opts.quick ? 64 : 224;
  const budget = bench.opts.memoryBudget;
  if (!bench.kiln) {
    bench.reporter.emit({ suite: 'memory', case: `resnet18 step N=${batch}`, error: `kiln webgpu unavailable: ${bench.kilnError}` });
    return;
  }
  let baseline: StepMemory | null = null;
  for (const cfg of MEMORY_CONFIGS) {
    const name = `resnet18 step N=${batch} ${size}x${size}: ${cfg.name}`;
    if (outOfTime(bench, 'memory', name)) continue;
    try {
      const m = await measureStep('webgpu', cfg, batch, size);
      baseline ??= m;
      // Half the batch at the same resolution gives the per-sample slope for the budget question.
      const halfBatch = Math.max(1, batch / 2);
      const half = await measureStep('webgpu', cfg, halfBatch, size, 1);
      const fits = largestBatch(budget, { batch: halfBatch, peak: half.peakBytes }, { batch, peak: m.peakBytes });
      log(`memory: ${name}: peak ${MiB(m.peakBytes)} MiB, activations ${MiB(m.activationBytes)} MiB, ${m.ms.toFixed(0)} ms; largest batch in ${MiB(budget)} MiB: ${fits}`);
      bench.reporter.emit({
        suite: 'memory',
        case: name,
        ms: Number(m.ms.toPrecision(5)),
        peakBytes: m.peakBytes,
        peakMiB: MiB(m.peakBytes),
        activationBytes: m.activationBytes,
        activationMiB: MiB(m.activationBytes),
        activationPerSampleMiB: MiB((m.activationBytes - half.activationBytes) / (batch - halfBatch || 1)),
        activationSavedVsFloat32: Number((1 - m.activationBytes / baseline.activationBytes).toFixed(3)),
        peakSavedVsFloat32: Number((1 - m.peakBytes / baseline.peakBytes).toFixed(3)),
        budgetBytes: budget,
        largestBatchInBudget: fits,
      });
    } catch (e) {
      bench.reporter.emit({ suite: 'memory', case: name, error: (e as Error).message.split('\n')[0]!.slice(0, 300) });
    }
  }
}
