/**
 * The largest batch that fits a byte budget (the memory suite's answer to
 * "CUDA out of memory"): a training step's peak grows linearly with the
 * batch once activations dominate (weights, gradients, momentum and cached
 * kernel data are fixed; activations and the batch itself are per sample),
 * so two measured peaks give peak = fixed + perSample * batch, the budget
 * gives the batch, and one step at that batch checks the prediction.
 * A second bound can come first: every tensor is one buffer, and no buffer
 * may exceed the adapter's binding limit (lavapipe: maxStorageBufferBindingSize
 * = 128 MiB, which conv1's float32 output [N, 64, 112, 112] reaches at N = 42).
 * The largest single request at the measured batch, scaled through the
 * origin, bounds every buffer that grows with the batch: a buffer of
 * a + b * N bytes (a >= 0) that is at most L at batch n has b <= L / n, so
 * at any N >= n it is at most L * N / n. (A line through the largest
 * requests at two batches is not such a bound: the largest request at the
 * smaller batch can be a fixed buffer, e.g. a Winograd filter transform,
 * which flattens the line; that is how the autocast rows once predicted 64
 * where a float32 buffer of conv1's output size failed at 196 MiB.)
 * The answer is the smaller of the two batches.
 */

/** One measured (batch, peak bytes) point. */
export interface PeakPoint {
  batch: number;
  peak: number;
}

/** The line through two measured peaks. */
export interface PeakFit {
  /** Bytes that do not grow with the batch (intercept). */
  fixedBytes: number;
  /** Bytes each extra sample adds (slope). */
  perSampleBytes: number;
}

/** peak = fixedBytes + perSampleBytes * batch through `a` and `b` (different batches). */
export function fitPeak(a: PeakPoint, b: PeakPoint): PeakFit {
  if (a.batch === b.batch) throw new Error(`fitPeak: expected two different batches, got ${a.batch} twice`);
  const perSampleBytes = (b.peak - a.peak) / (b.batch - a.batch);
  return { fixedBytes: a.peak - perSampleBytes * a.batch, perSampleBytes };
}

/** The largest batch whose predicted peak fits `budget` bytes (0 if none does, or the peak does not grow). */
export function largestBatch(budget: number, fit: PeakFit): number {
  if (!(fit.perSampleBytes > 0)) return 0;
  return Math.max(0, Math.floor((budget - fit.fixedBytes) / fit.perSampleBytes));
}

/** The predicted peak at `batch`. */
export function predictPeak(fit: PeakFit, batch: number): number {
  return fit.fixedBytes + fit.perSampleBytes * batch;
}

/** The largest batch no buffer request exceeds `maxBuffer` at, from the largest request `largest.peak` seen at batch `largest.batch` (scaled through the origin: see the file comment). */
export function largestBatchByBuffer(maxBuffer: number, largest: PeakPoint): number {
  if (!(largest.peak > 0) || !(largest.batch > 0)) throw new Error(`largestBatchByBuffer: expected a positive request at a positive batch, got ${largest.peak} bytes at batch ${largest.batch}`);
  return Math.floor((maxBuffer * largest.batch) / largest.peak);
}

/** The largest batch both the byte budget and the per-buffer limit allow, and which of them binds; `largest` is the largest single request at a measured batch. */
export function boundedBatch(budget: number, peak: PeakFit, maxBuffer: number, largest: PeakPoint): { batch: number; bound: 'budget' | 'buffer limit' } {
  const byBudget = largestBatch(budget, peak);
  const byBuffer = largestBatchByBuffer(maxBuffer, largest);
  return byBuffer < byBudget ? { batch: byBuffer, bound: 'buffer limit' } : { batch: byBudget, bound: 'budget' };
}

/** A pool whose acquire() can be watched (the WebGPU backend's storage pool). */
export interface WatchablePool {
  acquire(bytes: number): unknown;
}

/** Runs `fn` and returns its result with the largest single buffer it requested from `pool` (bytes, before bucketing). */
export async function largestRequestDuring<T>(pool: WatchablePool, fn: () => Promise<T>): Promise<[T, number]> {
  const original = pool.acquire;
  let largest = 0;
  // An own property shadows the prototype's method; deleting it restores the method.
  pool.acquire = (bytes: number) => {
    largest = Math.max(largest, bytes);
    return original.call(pool, bytes);
  };
  try {
    return [await fn(), largest];
  } finally {
    Reflect.deleteProperty(pool, 'acquire');
  }
}
