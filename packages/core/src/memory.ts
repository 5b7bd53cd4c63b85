import type { Tensor } from './tensor.js';
import { listBackends, getBackend } from './backend.js';
import { liveBytes, peakLiveBytes } from './storage.js';
import { asyncBodyError, isThenable } from './scope.js';

const scopes: Set<Tensor>[] = [];
let liveTensors = 0;

/** Called by every user-visible tensor on creation. */
export function trackTensor(t: Tensor): void {
  liveTensors++;
  scopes[scopes.length - 1]?.add(t);
}

/** Called when a user-visible tensor is disposed. */
export function untrackTensor(t: Tensor): void {
  liveTensors--;
  scopes[scopes.length - 1]?.delete(t);
}

/** Exempts tensors from the enclosing tidy() scopes so they outlive it. */
export function keep<T extends Tensor>(t: T): T {
  for (const s of scopes) s.delete(t);
  return t;
}

function collect(value: unknown, out: Set<Tensor>, seen = new Set<unknown>()): void {
  if (value === null || typeof value !== 'object' || seen.has(value)) return;
  seen.add(value);
  if ((value as { _isKilnTensor?: boolean })._isKilnTensor) {
    out.add(value as Tensor);
    return;
  }
  if (Array.isArray(value)) for (const v of value) collect(v, out, seen);
  else if (value instanceof Map) for (const v of value.values()) collect(v, out, seen);
  else if (Object.getPrototypeOf(value) === Object.prototype) for (const v of Object.values(value)) collect(v, out, seen);
}

/**
 * Runs `fn` and disposes every tensor it created except those it returns
 * (found in arrays, maps and plain objects) and those passed to keep().
 * Tidy scopes nest: a returned tensor joins the enclosing scope.
 *
 * `fn` must be synchronous. A function that returns a promise is rejected
 * with a KilnError (after the tensors it created so far are disposed):
 * across an `await` other tasks' tensors would land in this scope and be
 * disposed by it. Keep the tensor work in a synchronous tidy and await
 * outside it; `using` and dispose() free results across awaits:
 *
 * ```ts
 * using y = tidy(() => model.call(x).softmax(1)); // intermediates freed here
 * console.log(await y.toArray());                  // y freed at the block's end
 * ```
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  const finish = (result: unknown) => {
    const i = scopes.lastIndexOf(scope);
    if (i >= 0) scopes.splice(i, 1);
    const kept = new Set<Tensor>();
    collect(result, kept);
    for (const t of scope) if (!kept.has(t)) t.dispose();
    // Returned tensors belong to the enclosing scope now.
    const parent = scopes[scopes.length - 1];
    if (parent) for (const t of kept) if (scope.has(t)) parent.add(t);
  };
  let result: T;
  try {
    result = fn();
  } catch (e) {
    finish(undefined);
    throw e;
  }
  if (isThenable(result)) {
    finish(undefined);
    throw asyncBodyError('tidy', result, ASYNC_TIDY_ADVICE);
  }
  finish(result);
  return result;
}

const ASYNC_TIDY_ADVICE =
  "tensors other tasks create while it waits would be disposed by it. Do the tensor work in a synchronous tidy and await outside it (`using y = tidy(() => f(x)); await y.toArray();`), or dispose() explicitly";

/** Memory statistics (for a backend, or summed over all), PyTorch's memory_allocated in spirit. */
export interface MemoryInfo {
  /** User-visible tensors not yet disposed (one the garbage collector took without dispose() still counts: it leaked). */
  numTensors: number;
  /** Bytes held by live storages. */
  bytesInUse: number;
  /** Bytes the backends keep pooled for reuse. */
  bytesPooled: number;
  /** Buffers ever created by the backends (flat in a steady state). */
  buffersAllocated: number;
  /**
   * High-water mark of bytes in use since the last resetPeakMemoryStats()
   * (torch.cuda.max_memory_allocated): the GPU buffer pool's, which also
   * counts kernels' scratch buffers, where the backend keeps one; else the
   * live storages'.
   */
  peakBytesInUse: number;
}

/** Live tensors, bytes in use and bytes pooled. */
export function memory(backend?: string): MemoryInfo {
  const names = backend ? [backend] : listBackends();
  let bytesInUse = 0;
  let bytesPooled = 0;
  let buffersAllocated = 0;
  let peakBytesInUse = 0;
  for (const n of names) {
    bytesInUse += liveBytes.get(n) ?? 0;
    const m = getBackend(n).memory();
    bytesPooled += m.bytesPooled;
    buffersAllocated += m.buffersAllocated;
    peakBytesInUse += m.peakBytesInUse ?? peakLiveBytes.get(n) ?? 0;
  }
  return { numTensors: liveTensors, bytesInUse, bytesPooled, buffersAllocated, peakBytesInUse };
}

/** Starts a new high-water mark (memory().peakBytesInUse) from the bytes in use now (torch.cuda.reset_peak_memory_stats). */
export function resetPeakMemoryStats(backend?: string): void {
  for (const n of backend ? [backend] : listBackends()) {
    peakLiveBytes.set(n, liveBytes.get(n) ?? 0);
    getBackend(n).resetPeakMemory?.();
  }
}
