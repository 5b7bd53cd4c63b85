import type { Tensor } from '../tensor.js';
import { AutogradError } from '../errors.js';

/** A gradient-producing function: gradient of the output -> one gradient per input (null = none). */
export type BackwardFn = (grad: Tensor, saved: readonly Tensor[]) => (Tensor | null)[];

/** The backward of a node with several outputs: one gradient per output (zeros where none flowed) -> one per input. */
export type MultiBackwardFn = (grads: readonly Tensor[], saved: readonly Tensor[]) => (Tensor | null)[];

/**
 * Where a node sends the gradient of one of its inputs. `slot` names which
 * output of a multi-output node the input was (0 for ordinary nodes).
 */
export type Edge = { node: Node; slot?: number } | { leaf: Tensor } | null;

/**
 * Saved-tensor hooks (PyTorch's torch.autograd.graph.saved_tensors_hooks):
 * `pack` replaces a tensor an op saves for backward by a handle, `unpack`
 * gives the tensor back when backward needs it, `release` says the node no
 * longer needs the handle. Checkpointing packs to nothing and unpacks by
 * recomputing.
 */
export interface SavedTensorHooks {
  pack(t: Tensor): unknown;
  unpack(handle: unknown): Tensor;
  release(handle: unknown): void;
}

/** How a multi-output node (a custom Function) materialises missing output gradients. */
export interface MultiOutput {
  /** Zeros of each output's shape, dtype and device, for outputs no gradient reached. */
  zeros: ((i: number) => Tensor);
  backward: MultiBackwardFn;
  arity: number;
}

/** A hook on a tensor's gradient; returning a tensor replaces the gradient. */
export type GradHook = (grad: Tensor) => Tensor | void;

/** What Tensor.registerHook returns. */
export interface GradHookHandle {
  /** Unregisters the hook. */
  remove(): void;
}

/**
 * One recorded op on the autograd tape (PyTorch's grad_fn). It holds the
 * tensors its backward formula needs (each keeps its storage alive and
 * remembers the storage version it saw), and edges to its inputs' nodes.
 */
export class Node {
  /** Holders: the output tensor plus every downstream node that points here. */
  refs = 1;
  private savedTensors: Tensor[];
  private savedVersions: number[];
  private released = false;
  private packed: { hooks: SavedTensorHooks; handles: unknown[] } | null = null;
  /** Set for a node with several outputs (a custom Function); its outputs reach it through per-output nodes. */
  multi: MultiOutput | null = null;
  private hadPacked = false;
  /** Hooks registered on the output tensor (registerHook on a non-leaf). */
  hooks: GradHook[] = [];
  /** Set by retainGrad(): the output tensor whose `.grad` is filled. */
  retainTarget: WeakRef<Tensor> | null = null;

  /** A node for one op's output; ops create these through core's finish step. */
  constructor(
    /** PyTorch-style name, e.g. `MulBackward0`. */
    readonly name: string,
    /** Where each input's gradient goes (null for inputs that need none). */
    readonly next: Edge[],
    /** The backward formula: output gradient and saved tensors to input gradients. */
    readonly backwardFn: BackwardFn,
    saved: Tensor[],
    hooks: SavedTensorHooks | null = null,
  ) {
    if (hooks && saved.length > 0) {
      this.packed = { hooks, handles: saved.map((t) => hooks.pack(t)) };
      saved = [];
    } else saved = saved.map((t) => t._savedAlias());
    this.savedTensors = saved;
    this.savedVersions = saved.map((t) => t._storage.version);
    for (const e of next) if (e && 'node' in e) e.node.refs++;
  }

  /** The nodes this one sends gradients to (PyTorch's next_functions); null entries need no gradient, leaves show as 'AccumulateGrad'. */
  get nextFunctions(): (Node | 'AccumulateGrad' | null)[] {
    return this.next.map((e) => (e === null ? null : 'node' in e ? e.node : 'AccumulateGrad'));
  }

  /** @internal The tensors this node holds for backward as they are (no version check; empty once released, or when saved-tensor hooks packed them): what memory tests count. */
  get _held(): readonly Tensor[] {
    return this.savedTensors;
  }

  /** The saved tensors, checked against in-place modification since they were saved. */
  saved(): readonly Tensor[] {
    if (this.released && (this.savedVersions.length > 0 || this.hadPacked)) {
      throw new AutogradError(
        'backward',
        `trying to backward through the graph a second time (${this.name}'s saved tensors were freed); pass { retainGraph: true } to the first backward`,
      );
    }
    if (this.packed) {
      const { hooks, handles } = this.packed;
      return handles.map((h) => hooks.unpack(h));
    }
    this.savedTensors.forEach((t, i) => {
      if (t._storage.version !== this.savedVersions[i]) {
        throw new AutogradError(
          'backward',
          `one of the variables needed for gradient computation has been modified by an inplace operation: ${this.name} saved a tensor of shape [${t.shape.join(', ')}] at version ${this.savedVersions[i]}, it is now at version ${t._storage.version}`,
        );
      }
    });
    return this.savedTensors;
  }

  /**
   * @internal An in-place op computed its result `from` out of place and
   * copied it into `into` (same dtype and shape: the same values at every index):
   * every saved tensor that is `from` itself (its storage, offset, shape and
   * strides) becomes an alias of `into` at its current version, so the node
   * keeps the one storage PyTorch's relu_ saves (its result, which is
   * self) instead of a second copy of the same values. Nodes whose saved
   * tensors went to saved-tensor hooks are left alone (the hooks own them).
   */
  _resaveInto(from: Tensor, into: Tensor): void {
    if (this.packed || this.released) return;
    const isFrom = (t: Tensor) => t._storage === from._storage && t.offset === from.offset
      && t.shape.length === from.shape.length && t.shape.every((d, i) => d === from.shape[i] && t.strides[i] === from.strides[i]);
    if (into.dtype !== from.dtype || into.shape.length !== from.shape.length || into.shape.some((d, i) => d !== from.shape[i])) return;
    this.savedTensors.forEach((t, i) => {
      if (!isFrom(t)) return;
      this.savedTensors[i] = into._savedAlias();
      this.savedVersions[i] = into._storage.version;
      t._releaseInternal();
    });
  }

  /**
   * @internal True when this node holds `t`'s storage among its saved
   * tensors (relu_ keeps its result): a consumer of `t` can then save `t`
   * too at no cost in bytes, since its backward runs before this node's.
   */
  _keepsStorageOf(t: Tensor): boolean {
    return !this.packed && !this.released && this.savedTensors.some((s) => s._storage === t._storage);
  }

  /** Frees the saved tensors (after backward without retainGraph). */
  releaseSaved(): void {
    if (this.released) return;
    this.released = true;
    for (const t of this.savedTensors) t._releaseInternal();
    this.savedTensors = [];
    if (this.packed) {
      const { hooks, handles } = this.packed;
      this.packed = null;
      this.hadPacked = true;
      for (const h of handles) hooks.release(h);
    }
  }

  /** Drops one holder; the last one frees this node and unrefs its inputs' nodes. */
  unref(): void {
    if (--this.refs > 0) return;
    this.releaseSaved();
    for (const e of this.next) if (e && 'node' in e) e.node.unref();
  }
}
