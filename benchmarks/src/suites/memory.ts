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

/** The `memory` suite of `npm run bench` (see the file comment). */
export async function memorySuite(bench: Bench): Promise<void> {
  const batch = bench.opts.quick ? 2 : 16;
  const size = bench.opts.quick ? 64 : 224;
  const budget = bench.opts.memoryBudget;
  if (!bench.kiln) {
    bench.reporter.emit({ suite: 'memory', case: `resnet18 step N=${batch}`, error: `kiln webgpu unavailable: ${bench.kilnError}` });
    return;
  }
  await halfKernelSuite(bench);
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
