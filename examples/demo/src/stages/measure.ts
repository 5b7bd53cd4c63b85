import { fromArray, noGrad, tidy, type Tensor } from '@kiln/core';
import { quantization, type Module } from '@kiln/nn';
import type { DemoContext } from '../context.js';
import type { TimingProfile, VariantRow } from '../results.js';
import { evalBatches } from '../data/images.js';
import { disposing } from '../train-loop.js';

/** A model to compare: a Kiln module (any that maps images to logits) and what it weighs. */
export interface Variant {
  name: string;
  family: string;
  module: Module;
  /** Parameters it holds (weights and biases). */
  params: number;
  /** Bytes of its state dict (weights, biases, buffers; int8 weights 1 byte each). */
  bytes: number;
  /** Non-zero weights, for a pruned variant. */
  nonzero?: number;
}

/** Parameters of a module (weights and biases, masks and buffers not counted) and the bytes of its state dict. */
export function sizeOf(module: Module): { params: number; bytes: number } {
  const params = module.parameters().reduce((n, p) => n + p.numel(), 0);
  return { params, bytes: quantization.stateDictBytes(module) };
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

/** Predicted class of every held-out test image (eval mode, no autograd), in set order. */
export async function predictions(module: Module, ctx: DemoContext, label: string): Promise<Int32Array> {
  module.eval();
  const held = ctx.target.test;
  const out = new Int32Array(held.set.indices.length);
  const bar = ctx.io.bar(label, out.length, 'images');
  try {
    for (const b of disposing(evalBatches(held.set, held.values, 64, ctx.pipe.size, ctx.device))) {
      const pred = noGrad(() => tidy(() => (module.call(b.images) as Tensor).argmax(1)));
      const values = await pred.toArray();
      pred.dispose();
      b.items.forEach((k, j) => (out[k] = Number(values[j])));
      bar.update(b.items.at(-1)! + 1);
    }
  } finally {
    bar.stop();
  }
  return out;
}

/** Fraction of predictions equal to the labels. */
export const accuracyOf = (pred: Int32Array, labels: Int32Array) => pred.reduce((n, p, i) => n + (p === labels[i] ? 1 : 0), 0) / labels.length;

/** Fraction of positions where two prediction lists agree. */
export const agreementOf = (a: Int32Array, b: Int32Array) => a.reduce((n, p, i) => n + (p === b[i] ? 1 : 0), 0) / a.length;

/** Accuracy, size and latency of a variant (one row of the comparison table) and its predictions. */
export async function measureVariant(v: Variant, ctx: DemoContext): Promise<{ row: VariantRow; pred: Int32Array }> {
  const pred = await predictions(v.module, ctx, `${v.name} eval`);
  const msPerImage = await latency(v.module, ctx, ctx.opts.quick ? 8 : 32, ctx.opts.quick ? 2 : 3);
  const row: VariantRow = { name: v.name, family: v.family, top1: accuracyOf(pred, ctx.target.test.set.labels), params: v.params, megabytes: v.bytes / 1e6, msPerImage };
  if (v.nonzero !== undefined) row.nonzeroParams = v.nonzero;
  return { row, pred };
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
