/**
 * Memory of one ResNet18 training step (SGD, batch 16, 224x224, WebGPU)
 * under the three out-of-memory remedies: float32 baseline, activation
 * checkpointing per layer (resnet18's 'stage' mode: the stem and each of
 * layer1..layer4, five segments), autocast float16 (with GradScaler), and
 * both.
 * Per configuration one model takes one warm-up step (it allocates the
 * gradients and momentum, compiles the pipelines) and one measured step at
 * the batch, which gives:
 * - peak bytes: the pool's high-water mark over the step
 *   (memory().peakBytesInUse: weights, gradients, momentum, the batch,
 *   activations and kernel scratch);
 * - activation bytes: the pool's live bytes right after the forward minus
 *   right before it, i.e. what autograd saved for backward (plus the
 *   logits; under autocast also the float16 weight casts the convs save),
 *   the quantity PyTorch's 65.8 MB -> 12.4 MB per image (batch 1, per-layer
 *   checkpointing) measures;
 * - the step time.
 * Then one step at half the batch on the same model: the two peaks give the
 * line peak = fixed + perSample * batch (memory-budget.ts), the budget
 * (--memory-budget, default 2GiB) gives the predicted largest batch (or the
 * adapter's per-buffer limit does, where it binds first: the largest single
 * buffer request of the measured step scaled through the origin,
 * memory-budget.ts),
 * and one step at that batch verifies it (its peak against the budget). The
 * per-sample activation bytes are the slope of the two activation counts.
 * (At batches of 1-2 the fixed part dominates and the peak hardly moves, so
 * small batches would not give the slope.)
 *
 * Before the steps, the float16 kernels against float32 on the two shapes
 * that dominate (measureHalfKernels): ResNet18's layer1 conv (64 -> 64,
 * 3x3, 56x56, forward) and a 1024^3 GEMM. Per dtype: median ms, the bytes
 * of the operands the kernels must read and write (inputs + output at the
 * dtype's size), and the pool's growth over the op (output plus scratch:
 * im2col panels, Winograd transforms, or float32 stand-ins if a route had
 * no float16 kernel).
 */
import { autocast, conv2d, crossEntropy, fromArray, Generator, memory, randn, resetPeakMemoryStats, tidy, type Tensor } from '@kiln/core';
import { GradScaler, optim, type Module } from '@kiln/nn';
import { resnet18, type CheckpointMode } from '@kiln/resnet';
import { outOfTime, type Bench } from '../bench.js';
import { log } from '../report.js';
import { boundedBatch, fitPeak, largestBatch as largestBatchOf, largestRequestDuring, predictPeak } from './memory-budget.js';

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
  batch: number;
  /** High-water mark of the storage pool over the step (bytes). */
  peakBytes: number;
  /** Bytes held right after the forward minus right before it: the activations saved for backward (and the logits). */
  activationBytes: number;
  /** Bytes held before the step: weights, gradients, optimizer state, the batch. */
  baseBytes: number;
  ms: number;
}

/**
 * One ResNet18 in training mode with its SGD (momentum 0.9) and GradScaler
 * under a configuration; step(batch) runs and measures one training step on
 * a seeded batch. The same model serves every batch, so the fixed bytes
 * (weights, gradients, momentum, cached kernel data) are the same in each.
 */
export class MemoryStepper {
  private readonly model: Module;
  private readonly opt: optim.SGD;
  private readonly scaler: GradScaler;

  /** A fresh model on `device` under `cfg`, fed `size` x `size` images. */
  constructor(readonly device: string, readonly cfg: MemoryConfig, readonly size: number) {
    this.model = resnet18({ device, checkpoint: cfg.checkpoint }).train();
    this.opt = new optim.SGD(this.model.parameters(), { lr: 0.01, momentum: 0.9 });
    this.scaler = new GradScaler({ enabled: cfg.autocast });
  }

  /** One SGD step at `batch`, measured (see the file comment). */
  async step(batch: number): Promise<StepMemory> {
    const { device, cfg, size } = this;
    const x = randn([batch, 3, size, size], { device, generator: new Generator(batch) });
    const y = fromArray(Int32Array.from({ length: batch }, (_, i) => (i * 37) % 1000), [batch], { dtype: 'int32', device });
    try {
      this.opt.zeroGrad({ setToNone: false });
      await memorySync(device);
      resetPeakMemoryStats(device);
      const baseBytes = memory(device).bytesInUse;
      const t0 = performance.now();
      const forward = () => crossEntropy(this.model.call(x), y);
      const loss = tidy(() => (cfg.autocast ? autocast(forward) : forward()));
      const activationBytes = memory(device).bytesInUse - baseBytes;
      tidy(() => this.scaler.scale(loss).backward());
      await this.scaler.step(this.opt);
      this.scaler.update();
      await loss.item();
      await memorySync(device);
      const ms = performance.now() - t0;
      loss.dispose();
      return { batch, peakBytes: memory(device).peakBytesInUse, activationBytes, baseBytes, ms };
    } finally {
      x.dispose();
      y.dispose();
    }
  }

  /** Frees the model and the optimizer state. */
  dispose(): void {
    this.opt.dispose();
    this.model.dispose();
  }
}

async function memorySync(device: string): Promise<void> {
  const t = randn([1], { device });
  await t.toArray();
  t.dispose();
}

const MiB = (n: number) => Number((n / 2 ** 20).toFixed(1));

/** What one float16-or-float32 kernel case used. */
export interface KernelBytes {
  ms: number;
  /** Bytes of the inputs and the output at their dtype: what any kernel for the op must move at least once. */
  operandBytes: number;
  /** Pool growth over the op: the output plus every scratch buffer it took. */
  peakGrowthBytes: number;
}

/** The float16-vs-float32 kernel cases: [name, inputs' shapes, the op]. */
export function halfKernelCases(quick: boolean): [string, number[][], (a: Tensor, b: Tensor) => Tensor][] {
  const n = quick ? 1 : 8;
  const g = quick ? 256 : 1024;
  return [
    [`conv2d resnet18 layer1 N=${n} 64x56x56 3x3 -> 64`, [[n, 64, 56, 56], [64, 64, 3, 3]], (x, w) => conv2d(x, w, null, { padding: 1 })],
    [`matmul ${g}x${g}x${g}`, [[g, g], [g, g]], (a, b) => a.matmul(b)],
  ];
}

/** Times `op` on fresh `dtype` operands of `shapes` on WebGPU (median of `runs` after one warm-up) and measures its bytes. */
export async function measureHalfKernel(shapes: number[][], op: (a: Tensor, b: Tensor) => Tensor, dtype: 'float32' | 'float16', runs: number): Promise<KernelBytes> {
  const device = 'webgpu';
  const [a, b] = shapes.map((s, i) => tidy(() => randn(s, { device, generator: new Generator(i + 1) }).mul(0.1).to(dtype)));
  const size = dtype === 'float16' ? 2 : 4;
  try {
    const times: number[] = [];
    let peakGrowthBytes = 0;
    let outElems = 0;
    for (let r = 0; r <= runs; r++) {
      await memorySync(device);
      resetPeakMemoryStats(device);
      const before = memory(device).peakBytesInUse;
      const t0 = performance.now();
      const y = op(a!, b!);
      await memorySync(device);
      if (r > 0) times.push(performance.now() - t0);
      peakGrowthBytes = memory(device).peakBytesInUse - before;
      outElems = y.numel();
      y.dispose();
    }
    times.sort((x, y) => x - y);
    return { ms: times[times.length >> 1]!, operandBytes: (a!.numel() + b!.numel() + outElems) * size, peakGrowthBytes };
  } finally {
    a!.dispose();
    b!.dispose();
  }
}

/** float16 vs float32 on the layer1 conv and the GEMM (see the file comment): one JSON line per case and dtype. */
export async function halfKernelSuite(bench: Bench): Promise<void> {
  const runs = bench.opts.quick ? 1 : 3;
  for (const [name, shapes, op] of halfKernelCases(bench.opts.quick)) {
    let f32: KernelBytes | null = null;
    for (const dtype of ['float32', 'float16'] as const) {
      const c = `${name} ${dtype}`;
      if (outOfTime(bench, 'memory', c)) continue;
      try {
        const m = await measureHalfKernel(shapes, op, dtype, runs);
        f32 ??= dtype === 'float32' ? m : null;
        log(`memory: ${c}: ${m.ms.toFixed(1)} ms, operands ${MiB(m.operandBytes)} MiB, pool growth ${MiB(m.peakGrowthBytes)} MiB`);
        bench.reporter.emit({
          suite: 'memory', case: c, ms: Number(m.ms.toPrecision(5)),
          operandBytes: m.operandBytes, peakGrowthBytes: m.peakGrowthBytes,
          ...(f32 && dtype === 'float16' ? { msVsFloat32: Number((m.ms / f32.ms).toFixed(3)), peakGrowthVsFloat32: Number((m.peakGrowthBytes / f32.peakGrowthBytes).toFixed(3)) } : {}),
        });
      } catch (e) {
        bench.reporter.emit({ suite: 'memory', case: c, error: (e as Error).message.split('\n')[0]!.slice(0, 300) });
      }
    }
  }
}

/** PyTorch's saved activations per image at batch 1 on the same model (the issue's numbers, bytes): float32 and per-layer checkpointing. */
export const PYTORCH_ACTIVATIONS_PER_IMAGE: Readonly<Record<string, number>> = {
  'float32': 65.8e6,
  'checkpoint per layer': 12.4e6,
};

/** Largest batch the suite verifies with a step (a bigger prediction is reported unverified: one step would take too long). */
const MAX_VERIFIED_BATCH = { quick: 16, full: 512 };

/** What the verification step at the predicted batch gave. */
type Verified = { batch: number; peakBytes: number; fits: boolean; ms: number } | { batch: number; skipped: string } | { batch: number; error: string };

/**
 * The `memory` suite of `npm run bench` (see the file comment). `configs`
 * (default all four, the baseline of the vs-float32 fields is the first)
 * and `halfKernels: false` narrow it for a probe.
 */
export async function memorySuite(bench: Bench, configs: readonly MemoryConfig[] = MEMORY_CONFIGS, { halfKernels = true }: { halfKernels?: boolean } = {}): Promise<void> {
  const batch = bench.opts.quick ? 2 : 16;
  const size = bench.opts.quick ? 64 : 224;
  const budget = bench.opts.memoryBudget;
  const backend = bench.kiln;
  if (!backend) {
    bench.reporter.emit({ suite: 'memory', case: `resnet18 step N=${batch}`, error: `kiln webgpu unavailable: ${bench.kilnError}` });
    return;
  }
  // Pooled buffers of earlier batches would pile up across configurations (host memory on lavapipe): free them between runs.
  const trim = () => backend.runtime.storagePool.trim();
  // Every storage is bound whole, so the binding limit caps a buffer as well as maxBufferSize (the pool's own rule).
  const maxBuffer = Math.min(backend.device.limits.maxStorageBufferBindingSize, backend.device.limits.maxBufferSize);
  if (halfKernels) await halfKernelSuite(bench);
  const halfBatch = Math.max(1, batch / 2);
  let baseline: { full: StepMemory; perSample: number } | null = null;
  for (const cfg of configs) {
    const name = `resnet18 step N=${batch} ${size}x${size}: ${cfg.name}`;
    if (outOfTime(bench, 'memory', name)) continue;
    trim();
    const stepper = new MemoryStepper('webgpu', cfg, size);
    try {
      await stepper.step(batch); // warm-up
      const pool = backend.runtime.storagePool;
      const [full, fullLargest] = await largestRequestDuring(pool, () => stepper.step(batch));
      const half = await stepper.step(halfBatch);
      const fit = fitPeak({ batch: halfBatch, peak: half.peakBytes }, { batch, peak: full.peakBytes });
      const { batch: predicted, bound } = boundedBatch(budget, fit, maxBuffer, { batch, peak: fullLargest });
      const perSample = (full.activationBytes - half.activationBytes) / (batch - halfBatch);
      baseline ??= { full, perSample };
      let verified: Verified;
      if (predicted === 0) verified = { batch: 0, skipped: 'no batch fits the budget' };
      else if (predicted > MAX_VERIFIED_BATCH[bench.opts.quick ? 'quick' : 'full']) verified = { batch: predicted, skipped: `above ${MAX_VERIFIED_BATCH[bench.opts.quick ? 'quick' : 'full']}: not run` };
      else {
        trim();
        try {
          const v = await stepper.step(predicted);
          verified = { batch: predicted, peakBytes: v.peakBytes, fits: v.peakBytes <= budget, ms: Number(v.ms.toPrecision(5)) };
        } catch (e) {
          verified = { batch: predicted, error: (e as Error).message.split('\n')[0]!.slice(0, 300) };
        }
      }
      const torch = PYTORCH_ACTIVATIONS_PER_IMAGE[cfg.name];
      const check = 'fits' in verified
        ? `verified with one step at N=${verified.batch}: peak ${MiB(verified.peakBytes)} MiB, ${verified.fits ? 'within' : 'OVER'} the budget`
        : 'skipped' in verified ? `not verified (${verified.skipped})` : `verification step failed: ${verified.error}`;
      log(`memory: ${name}: peak ${MiB(full.peakBytes)} MiB, activations ${MiB(full.activationBytes)} MiB (${(perSample / 1e6).toFixed(1)} MB per sample${torch ? `, PyTorch ${(torch / 1e6).toFixed(1)} MB` : ''}), ${full.ms.toFixed(0)} ms; `
        + `largest batch in ${MiB(budget)} MiB predicted ${predicted} from the peaks at N=${halfBatch} and N=${batch} (bound: ${bound === 'budget' ? 'the budget' : `the ${MiB(maxBuffer)} MiB per-buffer limit, the budget alone allows ${largestBatchOf(budget, fit)}`}), ${check}`);
      bench.reporter.emit({
        suite: 'memory',
        case: name,
        ms: Number(full.ms.toPrecision(5)),
        peakBytes: full.peakBytes,
        peakMiB: MiB(full.peakBytes),
        activationBytes: full.activationBytes,
        activationMiB: MiB(full.activationBytes),
        activationPerSampleMB: Number((perSample / 1e6).toFixed(2)),
        ...(torch ? { pytorchActivationPerImageMB: torch / 1e6 } : {}),
        activationSavedVsFloat32: Number((1 - full.activationBytes / baseline.full.activationBytes).toFixed(3)),
        activationPerSampleSavedVsFloat32: Number((1 - perSample / baseline.perSample).toFixed(3)),
        peakSavedVsFloat32: Number((1 - full.peakBytes / baseline.full.peakBytes).toFixed(3)),
        halfBatch: { batch: halfBatch, peakBytes: half.peakBytes, activationBytes: half.activationBytes, ms: Number(half.ms.toPrecision(5)) },
        peakFit: { fixedBytes: Math.round(fit.fixedBytes), perSampleBytes: Math.round(fit.perSampleBytes) },
        budgetBytes: budget,
        largestBatchInBudget: predicted,
        boundBy: bound,
        largestBatchBudgetOnly: largestBatchOf(budget, fit),
        largestBufferBytes: fullLargest,
        maxBufferBytes: maxBuffer,
        predictedPeakBytes: Math.round(predictPeak(fit, predicted)),
        verified,
      });
    } catch (e) {
      bench.reporter.emit({ suite: 'memory', case: name, error: (e as Error).message.split('\n')[0]!.slice(0, 300) });
    } finally {
      stepper.dispose();
    }
  }
  trim();
}
