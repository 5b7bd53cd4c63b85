// Decides, once per test process, which backends a suite runs on and what
// happens when WebGPU is missing: skip with one clear line, or fail when
// KILN_REQUIRE_WEBGPU=1 (CI sets it, so a broken driver cannot pass as a skip).
import { afterAll, beforeAll, describe, it } from 'vitest';

/** True when the environment demands WebGPU tests run rather than skip. */
export const webgpuRequired = process.env.KILN_REQUIRE_WEBGPU === '1';

/** Whether a requirement is met, and if not, why. */
export type Availability = { ok: true } | { ok: false; reason: string };

let webgpu: Promise<Availability> | undefined;

/** The part of @kiln/kernels' WebGPUBackend the strategy passes use. */
interface StrategySwitch {
  tuning: { strategy: 'gpu' | 'cpu-like' };
  setStrategy(s: 'gpu' | 'cpu-like' | 'auto'): unknown;
}
let gpuBackend: StrategySwitch | undefined;

/**
 * Tries `initWebGPU()` from @kiln/kernels once per process (it registers the
 * 'webgpu' backend with core). Never throws: failure comes back as a reason.
 */
export function webgpuStatus(): Promise<Availability> {
  webgpu ??= (async (): Promise<Availability> => {
    try {
      const kernels = await import('@kiln/kernels');
      gpuBackend = await kernels.initWebGPU();
      return { ok: true };
    } catch (err) {
      const reason = err instanceof Error ? err.message.split('\n')[0] : String(err);
      return { ok: false, reason: `no WebGPU backend: ${reason}` };
    }
  })();
  return webgpu;
}

/**
 * The backends parity suites run on: always 'cpu', plus 'webgpu' when it
 * initialises. Throws when WebGPU is required but unavailable, so the test
 * file fails with the reason.
 */
export async function backends(): Promise<string[]> {
  const status = await webgpuStatus();
  if (status.ok) return ['cpu', 'webgpu'];
  if (webgpuRequired) throw new Error(`KILN_REQUIRE_WEBGPU=1 but ${status.reason}`);
  warnOnce(`[kiln] WebGPU tests skipped: ${status.reason} (set KILN_REQUIRE_WEBGPU=1 to fail instead)`);
  return ['cpu'];
}

/**
 * `describe` once per backend. When WebGPU is unavailable its suite is still
 * registered, skipped, with the reason in its title so the skip shows in the
 * report; when WebGPU is required it becomes one failing test with the reason.
 */
export async function describeBackends(title: string, fn: (backend: string, pass: string) => void): Promise<void> {
  describeEachBackend(title, await webgpuStatus(), fn);
}

/** Options of {@link describeEachBackend}. */
export interface EachBackendOptions {
  /**
   * Also run the WebGPU suite under the other kernel strategy class (see
   * @kiln/kernels tuning.ts): 'gpu' on lavapipe, 'cpu-like' on a real GPU,
   * so CI exercises the kernels a real GPU gets on a CPU adapter. For the
   * conv, GEMM, norm, pool and ResNet18 parity families.
   */
  strategies?: boolean;
}

/**
 * The strategy class a second WebGPU pass runs under: the one the backend
 * does not use (the backend starts from KILN_KERNEL_STRATEGY, else 'auto').
 */
export function otherStrategy(): 'gpu' | 'cpu-like' {
  if (!gpuBackend) throw new Error('otherStrategy() before a WebGPU backend initialised');
  return gpuBackend.tuning.strategy === 'gpu' ? 'cpu-like' : 'gpu';
}

/**
 * `describe` whose tests run with the WebGPU backend switched to strategy
 * class `strategy` (restored after the block). Vitest runs a file's suites
 * one after another, so no other suite sees the switch.
 */
export function describeStrategy(title: string, strategy: 'gpu' | 'cpu-like', fn: () => void): void {
  describe(title, () => {
    let before: 'gpu' | 'cpu-like' = 'cpu-like';
    beforeAll(() => {
      before = gpuBackend!.tuning.strategy;
      gpuBackend!.setStrategy(strategy);
    });
    afterAll(() => {
      gpuBackend!.setStrategy(before);
    });
    fn();
  });
}

/**
 * The synchronous core of {@link describeBackends}, for use inside another
 * `describe` once the status is known. `fn` gets the device name and the
 * pass ('cpu', 'webgpu', or 'webgpu, <class> strategy').
 */
export function describeEachBackend(
  title: string, webgpu: Availability, fn: (backend: string, pass: string) => void, options: EachBackendOptions = {},
): void {
  describe(`${title} [cpu]`, () => fn('cpu', 'cpu'));
  if (webgpu.ok) {
    describe(`${title} [webgpu]`, () => fn('webgpu', 'webgpu'));
    if (options.strategies) {
      const pass = `webgpu, ${otherStrategy()} strategy`;
      describeStrategy(`${title} [${pass}]`, otherStrategy(), () => fn('webgpu', pass));
    }
  } else if (webgpuRequired) it(`${title} [webgpu] (KILN_REQUIRE_WEBGPU=1)`, () => { throw new Error(webgpu.reason); });
  else {
    warnOnce(`[kiln] WebGPU tests skipped: ${webgpu.reason} (set KILN_REQUIRE_WEBGPU=1 to fail instead)`);
    describe.skip(`${title} [webgpu] skipped: ${webgpu.reason}`, () => fn('webgpu', 'webgpu'));
  }
}

/** `describe` for a suite that only makes sense on WebGPU (kernel unit tests), with the same skip/fail rule. */
export async function describeWebGPU(title: string, fn: () => void): Promise<void> {
  const status = await webgpuStatus();
  if (status.ok) describe(title, fn);
  else if (webgpuRequired) it(`${title} (KILN_REQUIRE_WEBGPU=1)`, () => { throw new Error(status.reason); });
  else {
    warnOnce(`[kiln] WebGPU tests skipped: ${status.reason} (set KILN_REQUIRE_WEBGPU=1 to fail instead)`);
    describe.skip(`${title} skipped: ${status.reason}`, fn);
  }
}

/** Throws (failing the calling test or file) unless WebGPU is available; returns false to mean "skip". */
export async function requireWebGPU(): Promise<boolean> {
  const status = await webgpuStatus();
  if (status.ok) return true;
  if (webgpuRequired) throw new Error(`KILN_REQUIRE_WEBGPU=1 but ${status.reason}`);
  warnOnce(`[kiln] WebGPU tests skipped: ${status.reason} (set KILN_REQUIRE_WEBGPU=1 to fail instead)`);
  return false;
}

const warned = new Set<string>();
function warnOnce(line: string): void {
  if (warned.has(line)) return;
  warned.add(line);
  console.warn(line);
}
export { warnOnce };
