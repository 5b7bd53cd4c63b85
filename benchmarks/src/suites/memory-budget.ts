/**
 * The largest batch that fits a byte budget (the memory suite's answer to
 * "CUDA out of memory"): a training step's peak grows linearly with the
 * batch once activations dominate (weights, gradients, momentum and cached
 * kernel data are fixed; activations and the batch itself are per sample),
 * so two measured peaks give peak = fixed + perSample * batch, the budget
 * gives the batch, and one step at that batch checks the prediction.
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
