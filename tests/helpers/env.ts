// Decides, once per test process, which backends a suite runs on and what
// happens when WebGPU is missing: skip with one clear line, or fail when
// KILN_REQUIRE_WEBGPU=1 (CI sets it, so a broken driver cannot pass as a skip).
import { describe, it } from 'vitest';

/** True when the environment demands WebGPU tests run rather than skip. */
export const webgpuRequired = process.env.KILN_REQUIRE_WEBGPU === '1';

/** Whether a requirement is met, and if not, why. */
export type Availability = { ok: true } | { ok: false; reason: string };

let webgpu: Promise<Availability> | undefined;

/**
 * Tries `initWebGPU()` from @kiln/kernels once per process (it registers the
 * 'webgpu' backend with core). Never throws: failure comes back as a reason.
 */
export function webgpuStatus(): Promise<Availability> {
  webgpu ??= (async (): Promise<Availability> => {
    try {
      const kernels = await import('@kiln/kernels');
      await kernels.initWebGPU();
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
export async function describeBackends(title: string, fn: (backend: string) => void): Promise<void> {
  describeEachBackend(title, await webgpuStatus(), fn);
}

/** The synchronous core of {@link describeBackends}, for use inside another `describe` once the status is known. */
export function describeEachBackend(title: string, webgpu: Availability, fn: (backend: string) => void): void {
  describe(`${title} [cpu]`, () => fn('cpu'));
  if (webgpu.ok) describe(`${title} [webgpu]`, () => fn('webgpu'));
  else if (webgpuRequired) it(`${title} [webgpu] (KILN_REQUIRE_WEBGPU=1)`, () => { throw new Error(webgpu.reason); });
  else {
    warnOnce(`[kiln] WebGPU tests skipped: ${webgpu.reason} (set KILN_REQUIRE_WEBGPU=1 to fail instead)`);
    describe.skip(`${title} [webgpu] skipped: ${webgpu.reason}`, () => fn('webgpu'));
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
