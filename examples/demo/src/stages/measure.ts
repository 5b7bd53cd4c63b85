import { fromArray, noGrad, tidy, type Tensor } from '@kiln/core';
import type { Module } from '@kiln/nn';
import type { DemoContext } from '../context.js';
import type { TimingProfile, VariantRow } from '../results.js';
import { evaluate } from '../train-loop.js';

/** A model to compare: a Kiln module (any that maps images to logits) and what it weighs. */
export interface Variant {
  name: string;
  family: string;
  module: Module;
  /** Parameters it holds (weights and biases). */
  params: number;
  /** Bytes of its weights as stored. */
  bytes: number;
}

/** Parameters of a module and their float32 bytes. */
export function fp32Size(module: Module): { params: number; bytes: number } {
  const params = module.parameters().reduce((n, p) => n + p.numel(), 0);
  return { params, bytes: 4 * params };
}

/** The first `batch` test images as one tensor on the device. */
function timingBatch(ctx: DemoContext, batch: number): Tensor {
  const plane = 3 * ctx.pipe.size * ctx.pipe.size;
  const n = Math.min(batch, ctx.target.test.set.indices.length);
  return fromArray(ctx.target.test.values.subarray(0, n * plane), [n, 3, ctx.pipe.size, ctx.pipe.size], { device: ctx.device });
}

/** Runs one eval forward and waits for its result. */
async function forwardOnce(module: Module, x: Tensor): Promise<void> {
  const y = noGrad(() => tidy(() => module.call(x) as Tensor));
  await y.toArray();
  y.dispose();
}

/** Milliseconds per image of a batched eval forward: one warm-up, then the best of `repeats`. */
export async function latency(module: Module, ctx: DemoContext, batch = 32, repeats = 3): Promise<number> {
  module.eval();
  const x = timingBatch(ctx, batch);
  try {
    await forwardOnce(module, x);
    let best = Infinity;
    for (let r = 0; r < repeats; r++) {
      const t0 = performance.now();
      await forwardOnce(module, x);
      best = Math.min(best, performance.now() - t0);
    }
    return best / x.shape[0]!;
  } finally {
    x.dispose();
  }
}

/** Accuracy, size and latency of a variant: one row of the comparison table. */
export async function measureVariant(v: Variant, ctx: DemoContext): Promise<VariantRow> {
  const acc = await evaluate(v.module, ctx.target.test, 64, ctx.pipe, ctx.device, ctx.io, `${v.name} eval`);
  const msPerImage = await latency(v.module, ctx);
  return { name: v.name, family: v.family, top1: acc.top1, params: v.params, megabytes: v.bytes / 1e6, msPerImage };
}

/**
 * Stage 7: the kernel-time profile of one eval forward of a variant. On
 * WebGPU these are GPU timestamps per kernel (the backend's profiler); on the
 * CPU backend, where kernels are plain loops, the forward's wall clock.
 */
export async function profileVariant(v: Variant, ctx: DemoContext, batch = 8): Promise<TimingProfile> {
  v.module.eval();
  const x = timingBatch(ctx, batch);
  try {
    await forwardOnce(v.module, x); // warm: pipelines compiled, folded weights cached
    if (ctx.device === 'webgpu') {
      const { initWebGPU } = await import('@kiln/kernels');
      const backend = await initWebGPU();
      const kernels = await backend.profile(() => forwardOnce(v.module, x));
      return { variant: v.name, batch: x.shape[0]!, source: 'GPU timestamps', totalMs: kernels.reduce((s, k) => s + k.ms, 0), kernels: kernels.map((k) => ({ ...k })) };
    }
    const t0 = performance.now();
    await forwardOnce(v.module, x);
    const ms = performance.now() - t0;
    return { variant: v.name, batch: x.shape[0]!, source: 'wall clock (CPU backend)', totalMs: ms, kernels: [{ kernel: 'forward', ms, count: 1 }] };
  } finally {
    x.dispose();
  }
}
