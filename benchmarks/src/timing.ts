/**
 * Timing: the median of several runs after warm-up. GPU work is timed by
 * flushed wall clock (each run ends with the implementation's own "wait for
 * the queue"), CPU peers by Benchmark.js, whose deferred mode handles async
 * calls and whose samples give the same median.
 */
import Benchmark from 'benchmark';

/** How many runs a case gets. */
export interface RunPolicy {
  warmup: number;
  minRuns: number;
  maxRuns: number;
  /** Keep adding runs (up to maxRuns) until this much time has been spent. */
  budgetMs: number;
  /** When warm-up says minRuns would take longer than this, take fewer (at least one). */
  capMs: number;
}

export const FULL_POLICY: RunPolicy = { warmup: 1, minRuns: 3, maxRuns: 10, budgetMs: 1500, capMs: 25_000 };
export const QUICK_POLICY: RunPolicy = { warmup: 1, minRuns: 2, maxRuns: 3, budgetMs: 200, capMs: 5_000 };

/** A measured time. */
export interface Timing {
  /** Median milliseconds per run. */
  ms: number;
  /** Fastest run. */
  minMs: number;
  runs: number;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * Times `run` (which must return only once its work is complete, e.g. after
 * awaiting the GPU queue): warm-up runs first (compiles pipelines, fills
 * pools), then the median of the timed runs.
 */
export async function timeRuns(run: () => unknown, policy: RunPolicy): Promise<Timing> {
  let warmMs = 0;
  for (let i = 0; i < policy.warmup; i++) {
    const t = performance.now();
    await run();
    warmMs = performance.now() - t;
  }
  const maxRuns = warmMs * policy.minRuns > policy.capMs ? Math.max(1, Math.floor(policy.capMs / Math.max(warmMs, 1))) : policy.maxRuns;
  const minRuns = Math.min(policy.minRuns, maxRuns);
  const times: number[] = [];
  const start = performance.now();
  while (times.length < maxRuns) {
    const t = performance.now();
    await run();
    times.push(performance.now() - t);
    if (times.length >= minRuns && performance.now() - start >= policy.budgetMs) break;
  }
  return { ms: median(times), minMs: Math.min(...times), runs: times.length };
}

/**
 * Times an async CPU-side call with Benchmark.js (deferred mode) and
 * returns the median of its samples, so it reads like {@link timeRuns}.
 */
export function timeCpuAsync(name: string, run: () => Promise<unknown>, policy: RunPolicy): Promise<Timing> {
  return new Promise((resolve, reject) => {
    const bench = new Benchmark(name, {
      defer: true,
      async: false,
      minSamples: policy.minRuns,
      maxTime: policy.budgetMs / 1000,
      initCount: 1,
      fn: (deferred: Benchmark.Deferred) => {
        run().then(() => deferred.resolve(), (e) => {
          bench.abort();
          reject(e);
        });
      },
    });
    bench.on('complete', () => {
      const sample = bench.stats.sample.map((s) => s * 1000);
      if (bench.error) reject(bench.error);
      else resolve({ ms: median(sample), minMs: Math.min(...sample), runs: sample.length });
    });
    bench.run();
  });
}
