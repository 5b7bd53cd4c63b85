/**
 * Cooperative waiting for Dawn's Node binding.
 *
 * While a WebGPU promise (mapAsync, onSubmittedWorkDone, ...) is pending,
 * dawn.node's AsyncRunner re-schedules `wgpuInstanceProcessEvents` through
 * `globalThis.setImmediate` — it looks the function up on the global object
 * every time, and passes a native callback with no arguments. On a CPU
 * WebGPU (lavapipe) that busy loop occupies a whole core that the driver's
 * worker threads need. While Kiln waits we swap in a `setImmediate` that
 * routes exactly those native callbacks through `setTimeout(ms)` and leaves
 * every other caller untouched; the original is restored when the last wait
 * ends. In a browser there is nothing to do.
 */

type Immediate = (fn: (...args: unknown[]) => void, ...args: unknown[]) => unknown;

const NATIVE = /\{\s*\[native code\]\s*\}\s*$/;

let pending = 0;
let original: Immediate | undefined;
let intervalMs = 1;

function isDawnPoll(fn: unknown, args: unknown[]): boolean {
  return typeof fn === 'function' && args.length === 0 && fn.name === '' && NATIVE.test(Function.prototype.toString.call(fn));
}

function install(): void {
  const g = globalThis as unknown as { setImmediate?: Immediate };
  if (original || typeof g.setImmediate !== 'function') return;
  const orig = g.setImmediate;
  original = orig;
  const cooperative: Immediate = (fn, ...args) =>
    isDawnPoll(fn, args) ? setTimeout(fn, intervalMs) : orig(fn, ...args);
  g.setImmediate = cooperative;
}

function uninstall(): void {
  if (!original) return;
  (globalThis as unknown as { setImmediate: Immediate }).setImmediate = original;
  original = undefined;
}

/**
 * Awaits `start()` with Dawn's event polling slowed to one poll per
 * `pollMs` milliseconds (0 keeps Dawn's own `setImmediate` busy poll).
 * `start` must create the promise inside, so the first poll Dawn schedules
 * already sees the cooperative `setImmediate`.
 */
export async function cooperativeWait<T>(pollMs: number, start: () => Promise<T>): Promise<T> {
  if (pollMs <= 0 || typeof (globalThis as { process?: unknown }).process === 'undefined') return start();
  intervalMs = pollMs;
  if (pending++ === 0) install();
  try {
    return await start();
  } finally {
    if (--pending === 0) uninstall();
  }
}
