/**
 * Waiting on a peer's GPU queue without Dawn's busy poll.
 *
 * While a WebGPU promise is pending, dawn.node re-schedules its event poll
 * through globalThis.setImmediate: a busy loop that, on lavapipe, takes one
 * of the two cores the driver's threads need. Kiln's runtime waits with a
 * slowed poll (@kiln/kernels polling.ts); the harness waits on TF.js's
 * queue the same way, so the two GPU implementations are timed under the
 * same conditions. (The trick lives in kernels but is not exported; this is
 * the harness's own copy of the idea, kept to what a wait needs.)
 */
type Immediate = (fn: (...args: unknown[]) => void, ...args: unknown[]) => unknown;

const NATIVE = /\{\s*\[native code\]\s*\}\s*$/;

/** Awaits `start()` with Dawn's native event polls routed through setTimeout(pollMs). */
export async function waitCooperatively<T>(start: () => Promise<T>, pollMs = 1): Promise<T> {
  const g = globalThis as unknown as { setImmediate: Immediate };
  const original = g.setImmediate;
  g.setImmediate = (fn, ...args) =>
    typeof fn === 'function' && args.length === 0 && fn.name === '' && NATIVE.test(Function.prototype.toString.call(fn))
      ? setTimeout(fn, pollMs)
      : original(fn, ...args);
  try {
    return await start();
  } finally {
    g.setImmediate = original;
  }
}
