/**
 * The shared state of a run and the one way a case is measured: Kiln first,
 * then each peer on the same case, each timed under the same run policy, and
 * a single JSON line with the ratios.
 */
import { tidy, type Tensor } from '@kiln/core';
import { autotuneState, tunePending, type WebGPUBackend } from '@kiln/kernels';
import type { Options } from './cli.js';
import type { Runner } from './cases.js';
import { log, timingFields, type Measurement, type PeerResult, type Reporter } from './report.js';
import { timeRuns, type RunPolicy } from './timing.js';
import type { TfjsPeer } from './peers/tfjs.js';
import type { TorchPeer } from './peers/torch.js';
import type { ResNetAssets } from './weights.js';

export interface Bench {
  opts: Options;
  policy: RunPolicy;
  reporter: Reporter;
  /** Kiln's WebGPU backend, or null (kilnError says why). */
  kiln: WebGPUBackend | null;
  kilnError: string | null;
  tfjs: TfjsPeer | null;
  /** TF.js on its WASM backend (XNNPACK) on the CPU, or null. */
  tfjsWasm: TfjsPeer | null;
  torch: TorchPeer | null;
  /** The ResNet18 weights and data, loaded on first use. */
  assets(): ResNetAssets;
  /** performance.now() after which no case starts (--max-seconds). */
  deadline: number;
}

/** True (and the case reported as skipped) when the run's time budget is spent. */
export function outOfTime(bench: Bench, suite: string, name: string): boolean {
  if (performance.now() < bench.deadline) return false;
  log(`${suite}: ${name} skipped (time budget)`);
  bench.reporter.emit({ suite, case: name, skipped: `time budget: --max-seconds ${bench.opts.maxSeconds} spent` });
  return true;
}

/** How one implementation builds its runner for a case (null: does not take part). */
export interface CaseSpec {
  suite: string;
  name: string;
  flop?: number;
  kiln: (() => Runner) | null;
  tfjs?: (() => Runner) | null;
  /** The case on TF.js's WASM backend (the runner activates it). */
  tfjsWasm?: (() => Runner) | null;
  /** The case as the PyTorch peer understands it. */
  torch?: Record<string, unknown> | null;
  /** Peers outside the GPU/PyTorch pair (ONNX Runtime), each timing itself. */
  others?: Record<string, () => Promise<PeerResult>>;
  /** Extra fields for the line. */
  extra?: Record<string, unknown>;
  /** Also time Kiln's kernels with GPU timestamps (one profiled run): gpuMs. */
  gpuTime?: boolean;
}

const message = (e: unknown): string => (e instanceof Error ? e.message : String(e)).split('\n')[0]!.slice(0, 300);

/** Times `make()`'s runner and disposes it; errors become the result. */
export async function timeRunner(make: () => Runner, policy: RunPolicy): Promise<PeerResult> {
  let runner: Runner | null = null;
  try {
    runner = make();
    const r = runner;
    return timingFields(await timeRuns(() => r.run(), policy));
  } catch (e) {
    return { error: message(e) };
  } finally {
    try {
      runner?.dispose();
    } catch {
      // a failed case may leave nothing to dispose
    }
  }
}

/**
 * A Kiln runner: `inputs` are created once, `op` is run in a tidy scope
 * (its results disposed), then the backend's queue is awaited.
 */
export function kilnRunner(backend: WebGPUBackend, inputs: Tensor[], op: () => unknown): Runner {
  return {
    run: async () => {
      tidy(() => {
        op();
      });
      await backend.sync();
    },
    dispose: () => {
      for (const t of inputs) t.dispose();
    },
  };
}

/**
 * With the autotuner on: one run of the case queues its conv shapes, which
 * are tuned before the case is timed (winners come from the cache file when
 * it has them). Returns how many shapes were tuned now, or 0.
 */
async function tuneCase(backend: WebGPUBackend, make: () => Runner): Promise<number> {
  if (!autotuneState(backend)) return 0;
  let runner: Runner | null = null;
  try {
    runner = make();
    await runner.run();
  } catch {
    return 0; // the timed run reports the error
  } finally {
    runner?.dispose();
  }
  return Object.keys(await tunePending(backend)).length;
}

/** Measures a case on Kiln and every peer that takes part, and emits its line. */
export async function measureCase(bench: Bench, spec: CaseSpec): Promise<Record<string, unknown> | null> {
  if (outOfTime(bench, spec.suite, spec.name)) return null;
  log(`${spec.suite}: ${spec.name}`);
  const m: Measurement = { suite: spec.suite, case: spec.name, flop: spec.flop, ...spec.extra };
  if (spec.kiln && bench.kiln) {
    const tuned = await tuneCase(bench.kiln, spec.kiln);
    if (tuned) m.tunedConvs = tuned;
    const r = await timeRunner(spec.kiln, bench.policy);
    Object.assign(m, r);
    if (spec.gpuTime && !r.error) {
      const backend = bench.kiln;
      let runner: Runner | null = null;
      try {
        runner = spec.kiln();
        await runner.run();
        const r2 = runner;
        const times = await backend.profile(() => r2.run());
        m.gpuMs = Number(times.reduce((s, t) => s + t.ms, 0).toPrecision(4));
      } catch (e) {
        m.gpuError = message(e);
      } finally {
        runner?.dispose();
      }
    }
  } else if (spec.kiln) {
    m.error = `kiln webgpu unavailable: ${bench.kilnError}`;
  }
  const peers: Record<string, PeerResult> = {};
  if (spec.tfjs && bench.tfjs) peers.tfjs = await timeRunner(spec.tfjs, bench.policy);
  if (spec.tfjsWasm && bench.tfjsWasm) peers.tfjs_wasm = await timeRunner(spec.tfjsWasm, bench.policy);
  if (spec.torch && bench.torch) peers.torch = await bench.torch.time(spec.torch, bench.policy);
  for (const [name, time] of Object.entries(spec.others ?? {})) {
    try {
      peers[name] = await time();
    } catch (e) {
      peers[name] = { error: message(e) };
    }
  }
  if (Object.keys(peers).length) m.peers = peers;
  return bench.reporter.emit(m);
}
