// Automatic mixed precision (torch.autocast): inside an autocast scope each
// op listed in AUTOCAST_POLICY casts its floating inputs by its policy at
// the op's entry, before the op runs, and then runs as it always does: one
// definition per op, no second set of float16 ops. The casts are ordinary
// differentiable casts, so backward sends each gradient back in its
// input's dtype (float32 parameters get float32 gradients, as in PyTorch).
//
// Scopes follow Kiln's scope rule (scope.ts): a body is synchronous; one
// that returns a promise is rejected after the previous state is restored.
//
// The cast cache (PyTorch's autocast weight cache): inside an enabled
// region, a float32 leaf that requires grad (a parameter) is cast to
// float16 once and the cast reused by every later op of the region, so a
// weight used N times costs one cast, not N; the cast is one autograd node,
// so its gradient sums every use before flowing back to the parameter. An
// entry is dropped when the parameter's version changes (an in-place update
// inside the region: PyTorch's cache would hand out the stale cast), and the
// whole cache is freed when the outermost enabled region exits
// (torch.clear_autocast_cache at exit); clearAutocastCache() frees it early.
import type { Tensor } from '../tensor.js';
import type { DType } from '../dtype.js';
import { KilnError } from '../errors.js';
import { asyncBodyError, isThenable } from '../scope.js';
import { AUTOCAST_POLICY } from './policy.js';

/** Options of {@link autocast}. */
export interface AutocastOptions {
  /** The lower-precision dtype (default and only choice: 'float16'). */
  dtype?: 'float16';
  /** False runs the body with autocast off (nesting `enabled: false` inside an autocast region turns it off there). */
  enabled?: boolean;
}

/** A parameter's cached cast and the parameter version it was made from. */
interface CachedCast {
  version: number;
  cast: Tensor;
}

interface State {
  enabled: boolean;
  dtype: DType;
  /** The cast cache of the outermost enabled region (shared by the regions nested in it). */
  cache?: Map<Tensor, CachedCast>;
}

let state: State = { enabled: false, dtype: 'float16' };

function freeCache(cache: Map<Tensor, CachedCast> | undefined): void {
  if (!cache) return;
  for (const { cast } of cache.values()) if (!cast.isDisposed) cast.dispose();
  cache.clear();
}

/**
 * Frees the casts autocast has cached for the current region
 * (torch.clear_autocast_cache); later ops of the region cast afresh. Regions
 * free their cache when they end, so this is only needed inside a long one.
 */
export function clearAutocastCache(): void {
  freeCache(state.cache);
}

/** True inside an enabled autocast scope (torch.is_autocast_enabled). */
export function isAutocastEnabled(): boolean {
  return state.enabled;
}

function enter(opts: AutocastOptions): State {
  if (opts.dtype !== undefined && opts.dtype !== 'float16') throw new KilnError('autocast', `the autocast dtype must be 'float16', got '${opts.dtype as string}'`);
  const prev = state;
  const enabled = opts.enabled ?? true;
  // The outermost enabled region owns a new cache; nested regions (and `enabled: false` ones) share it.
  state = { enabled, dtype: opts.dtype ?? 'float16', cache: prev.cache ?? (enabled ? new Map() : undefined) };
  return prev;
}

/** Leaves a region entered by enter(): frees the cache if this region created it. */
function leave(prev: State): void {
  if (state.cache !== prev.cache) freeCache(state.cache);
  state = prev;
}

/**
 * Runs `fn` with autocast (torch.autocast(device_type, dtype=torch.float16)):
 * conv2d/linear/matmul in float16; softmax, logSoftmax, crossEntropy,
 * nllLoss, mseLoss, sum, exp, log, pow (and the other float32-list ops) in
 * float32; cat/stack at the widest input type; everything else in its
 * inputs' dtype. Run backward outside the scope, as PyTorch recommends.
 * `fn` must be synchronous.
 *
 * @example
 * ```ts
 * const loss = autocast(() => crossEntropy(model.call(x), y));
 * scaler.scale(loss).backward();
 * ```
 */
export function autocast<T>(fn: () => T, opts: AutocastOptions = {}): T {
  const prev = enter(opts);
  let result: T;
  try {
    result = fn();
  } finally {
    leave(prev);
  }
  if (isThenable(result)) {
    throw asyncBodyError('autocast', result, 'autocast is one global policy, so while the body waits other tasks would run under it. Keep the body synchronous and await outside it (`const y = autocast(() => model.call(x)); await y.toArray();`)');
  }
  return result;
}

/**
 * The `using` form of {@link autocast}: autocast is on until the returned
 * handle is disposed (`using _ = autocastScope();`). Scopes must be
 * disposed in reverse order of creation.
 */
export function autocastScope(opts: AutocastOptions = {}): AutocastHandle {
  const prev = enter(opts);
  const mine = state;
  let open = true;
  const dispose = () => {
    if (!open) return;
    if (state !== mine) throw new KilnError('autocastScope', 'autocast scopes must be closed in reverse order of opening');
    open = false;
    leave(prev);
  };
  return { dispose, [Symbol.dispose]: dispose };
}

/** What {@link autocastScope} returns: dispose it (or let `using` do so) to end the scope. */
export interface AutocastHandle extends Disposable {
  /** Ends the scope, restoring the autocast state it replaced. */
  dispose(): void;
}

const isFloatTensor = (t: unknown): t is Tensor => {
  const x = t as Tensor | null;
  return x?._isKilnTensor === true && (x.dtype === 'float32' || x.dtype === 'float16');
};

/** The dtype `op` runs in under the current autocast state, given its floating inputs; null when autocast leaves it alone. */
function targetOf(op: string, floats: readonly Tensor[]): DType | null {
  if (!state.enabled) return null;
  const policy = AUTOCAST_POLICY[op];
  if (!policy || floats.length === 0) return null;
  if (policy === 'lower') return state.dtype;
  if (policy === 'float32') return 'float32';
  return floats.some((t) => t.dtype === 'float32') ? 'float32' : state.dtype;
}

/** Floating tensors among `inputs`, looking one level into arrays (cat's list). */
function floatsOf(inputs: readonly unknown[]): Tensor[] {
  return inputs.flatMap((x) => (Array.isArray(x) ? x.filter(isFloatTensor) : isFloatTensor(x) ? [x] : []));
}

/**
 * @internal True when autocast must cast some input of `op` first: the op
 * then returns {@link withAutocast}(op, inputs, itself), and the re-entered
 * call, whose inputs are cast already, runs as usual.
 */
export function needsAutocast(op: string, inputs: readonly unknown[]): boolean {
  if (!state.enabled) return false;
  const floats = floatsOf(inputs);
  const target = targetOf(op, floats);
  return target !== null && floats.some((t) => t.dtype !== target);
}

/**
 * @internal The dispatch step of autocast: runs `run` on `inputs` cast by
 * the policy of `op`, and frees the casts it made once the op has saved
 * what its backward needs.
 */
export function withAutocast<A extends unknown[], R>(op: string, inputs: A, run: (...inputs: A) => R): R {
  const target = targetOf(op, floatsOf(inputs));
  if (target === null) return run(...inputs);
  const made: Tensor[] = [];
  const cache = state.cache;
  const castOne = (x: unknown): unknown => {
    if (!isFloatTensor(x) || x.dtype === target) return x;
    // Parameters (float32 leaves that require grad) cast to the lower dtype come from the region's cache.
    const cacheable = cache !== undefined && target === state.dtype && x.dtype === 'float32' && x.isLeaf && x.requiresGrad;
    if (cacheable) {
      const hit = cache.get(x);
      if (hit && hit.version === x.version && !hit.cast.isDisposed) return hit.cast;
      if (hit && !hit.cast.isDisposed) hit.cast.dispose();
      const c = x.to(target);
      cache.set(x, { version: x.version, cast: c });
      return c;
    }
    const c = x.to(target);
    made.push(c);
    return c;
  };
  const cast = (inputs as unknown[]).map((x) => (Array.isArray(x) ? x.map(castOne) : castOne(x))) as A;
  let result: R | undefined;
  try {
    result = run(...cast);
    return result;
  } finally {
    for (const t of made) if ((t as unknown) !== result) t.dispose();
  }
}

/** @internal Runs `fn` with autocast off (backward: gradient formulas run in their tensors' dtypes, as PyTorch's engine). */
export function withoutAutocast<T>(fn: () => T): T {
  if (!state.enabled) return fn();
  const prev = state;
  state = { ...state, enabled: false };
  try {
    return fn();
  } finally {
    state = prev;
  }
}

/** @internal The current autocast state, for checkpoint() to recompute under the forward's (without its cast cache, which ends with the region). */
export function captureAutocast(): Readonly<{ enabled: boolean; dtype: DType }> {
  return { enabled: state.enabled, dtype: state.dtype };
}

/** @internal Runs `fn` under a state from captureAutocast(). */
export function withAutocastState<T>(s: Readonly<{ enabled: boolean; dtype: DType }>, fn: () => T): T {
  const prev = state;
  state = { enabled: s.enabled, dtype: s.dtype };
  try {
    return fn();
  } finally {
    state = prev;
  }
}
