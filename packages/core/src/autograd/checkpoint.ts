// Activation checkpointing with PyTorch's non-reentrant semantics
// (torch.utils.checkpoint(use_reentrant=False)): the forward of `fn` is
// recorded on the ordinary tape, but every tensor its ops save for backward
// is packed to a number (saved-tensor hooks) instead of being kept. The
// first time backward needs one of them, `fn` runs again on the same inputs
// with grad on, and the tensors that recomputation saves, in the same order,
// stand in for the dropped ones. Because the original graph is the one
// backward walks, parameters used inside `fn` get gradients even when no
// input requires grad.
import type { Tensor } from '../tensor.js';
import { AutogradError, KilnError } from '../errors.js';
import { tidy } from '../memory.js';
import { defaultGenerator } from '../random.js';
import { enableGrad, isGradEnabled } from './grad-mode.js';
import type { SavedTensorHooks } from './node.js';
import { withSavedTensorHooks } from './record.js';
import { recomputing } from './recompute.js';
import { captureAutocast, withAutocastState } from '../autocast/autocast.js';

/** Options of {@link checkpoint}. */
export interface CheckpointOptions {
  /**
   * Restore the default generator's state before recomputing, so dropout
   * (and any other draw from it) inside `fn` repeats the forward's numbers
   * (default true, as PyTorch). Explicit Generator objects are not restored.
   */
  preserveRngState?: boolean;
}

const isTensor = (x: unknown): x is Tensor => (x as Tensor | null)?._isKilnTensor === true;
const isOptions = (x: unknown): x is CheckpointOptions =>
  typeof x === 'object' && x !== null && !isTensor(x) && Object.getPrototypeOf(x) === Object.prototype;

/** One checkpointed call: what it needs to recompute, and the recomputed tensors while nodes still need them. */
class Frame implements SavedTensorHooks {
  private packed = 0;
  private released = 0;
  private recomputed: Tensor[] | null = null;
  /** The inputs, held (as autograd holds saved tensors) until no node needs a recomputation. */
  private args: unknown[] | null;
  private readonly argRequiresGrad: boolean[];
  /** The forward's autocast state: the recomputation runs under it (backward itself runs with autocast off). */
  private readonly autocast = captureAutocast();

  constructor(
    private readonly fn: (...args: unknown[]) => unknown,
    args: readonly unknown[],
    private readonly rngState: Uint32Array | null,
  ) {
    this.argRequiresGrad = args.map((a) => isTensor(a) && a.requiresGrad);
    this.args = args.map((a) => (isTensor(a) ? a._savedAlias() : a));
  }

  /** Called after the forward: with nothing packed no node will ever ask, so the inputs go now. */
  settle(): void {
    if (this.packed === 0) this.free();
  }

  private free(): void {
    for (const t of this.recomputed ?? []) t._releaseInternal();
    this.recomputed = null;
    for (const a of this.args ?? []) if (isTensor(a)) a._releaseInternal();
    this.args = null;
  }

  pack(): unknown {
    return this.packed++;
  }

  unpack(handle: unknown): Tensor {
    this.recomputed ??= this.recompute();
    const t = this.recomputed[handle as number];
    if (!t) throw new AutogradError('checkpoint', `the recomputed forward saved ${this.recomputed.length} tensors, the original forward ${this.packed}: fn must run the same ops both times`);
    return t;
  }

  release(): void {
    // Once every node that needed a recomputed tensor has let go of it, nothing can ask again.
    if (++this.released >= this.packed) this.free();
  }

  private recompute(): Tensor[] {
    const saved: Tensor[] = [];
    const collect: SavedTensorHooks = {
      pack: (t) => saved.push(t._savedAlias()) - 1,
      unpack: (h) => saved[h as number]!,
      release: () => {},
    };
    // Detached inputs with the same requiresGrad: the same ops record, so the same tensors are saved.
    if (!this.args) throw new AutogradError('checkpoint', 'the checkpointed graph was already freed; pass { retainGraph: true } to the first backward');
    const inputs = this.args.map((a, i) => (isTensor(a) ? a.detach().requiresGrad_(this.argRequiresGrad[i]) : a));
    const outer = this.rngState ? defaultGenerator.getState() : null;
    if (this.rngState) defaultGenerator.setState(this.rngState);
    try {
      // The recomputed graph is thrown away (tidy frees its outputs); only its saved tensors are kept.
      recomputing(() => withAutocastState(this.autocast, () => enableGrad(() => tidy(() => void withSavedTensorHooks(collect, () => this.fn(...inputs))))));
    } finally {
      if (outer) defaultGenerator.setState(outer);
      for (const t of inputs) if (isTensor(t)) t.dispose();
    }
    if (saved.length !== this.packed) {
      for (const t of saved) t._releaseInternal();
      throw new AutogradError('checkpoint', `the recomputed forward saved ${saved.length} tensors, the original forward ${this.packed}: fn must run the same ops both times`);
    }
    return saved;
  }
}

/**
 * Runs `fn(...inputs)` keeping none of its intermediate activations for
 * backward; backward recomputes them (torch.utils.checkpoint with
 * use_reentrant=False). Trailing `{ preserveRngState }` options are
 * optional. Tensors `fn` creates and does not return are freed when it
 * returns (it runs inside tidy()), which is where the memory goes.
 *
 * BatchNorm inside `fn` updates its running statistics once, in the
 * forward: the recomputation skips the update (PyTorch's checkpoint updates
 * them a second time). With grad mode off `fn` simply runs.
 *
 * @example
 * ```ts
 * const y = checkpoint((x) => block.call(x), x);
 * y.sum().backward(); // block's activations are recomputed here
 * ```
 */
export function checkpoint<A extends unknown[], R>(fn: (...inputs: A) => R, ...inputs: [...A] | [...A, CheckpointOptions]): R {
  if (typeof fn !== 'function') throw new KilnError('checkpoint', `expected a function, got ${typeof fn}`);
  const last = inputs[inputs.length - 1];
  const opts: CheckpointOptions = isOptions(last) ? last : {};
  const args = (isOptions(last) ? inputs.slice(0, -1) : inputs) as A;
  for (const a of args) if (isTensor(a)) a._checkAlive('checkpoint');
  if (!isGradEnabled()) return fn(...args);
  const rngState = opts.preserveRngState ?? true ? defaultGenerator.getState() : null;
  const frame = new Frame(fn as (...a: unknown[]) => unknown, args, rngState);
  try {
    return withSavedTensorHooks(frame, () => tidy(() => fn(...args)));
  } finally {
    frame.settle();
  }
}
