import type { Tensor } from '../tensor.js';
import { AutogradError } from '../errors.js';

/** A gradient-producing function: gradient of the output -> one gradient per input (null = none). */
export type BackwardFn = (grad: Tensor, saved: readonly Tensor[]) => (Tensor | null)[];

/** Where a node sends the gradient of one of its inputs. */
export type Edge = { node: Node } | { leaf: Tensor } | null;

/** A hook on a tensor's gradient; returning a tensor replaces the gradient. */
export type GradHook = (grad: Tensor) => Tensor | void;

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
  /** Hooks registered on the output tensor (registerHook on a non-leaf). */
  hooks: GradHook[] = [];
  /** Set by retainGrad(): the output tensor whose `.grad` is filled. */
  retainTarget: WeakRef<Tensor> | null = null;

  constructor(
    /** PyTorch-style name, e.g. `MulBackward0`. */
    readonly name: string,
    readonly next: Edge[],
    readonly backwardFn: BackwardFn,
    saved: Tensor[],
  ) {
    this.savedTensors = saved;
    this.savedVersions = saved.map((t) => t._storage.version);
    for (const e of next) if (e && 'node' in e) e.node.refs++;
  }

  /** The nodes this one sends gradients to (PyTorch's next_functions); null entries need no gradient, leaves show as 'AccumulateGrad'. */
  get nextFunctions(): (Node | 'AccumulateGrad' | null)[] {
    return this.next.map((e) => (e === null ? null : 'node' in e ? e.node : 'AccumulateGrad'));
  }

  /** The saved tensors, checked against in-place modification since they were saved. */
  saved(): readonly Tensor[] {
    if (this.released && this.savedVersions.length > 0) {
      throw new AutogradError(
        'backward',
        `trying to backward through the graph a second time (${this.name}'s saved tensors were freed); pass { retainGraph: true } to the first backward`,
      );
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

  /** Frees the saved tensors (after backward without retainGraph). */
  releaseSaved(): void {
    if (this.released) return;
    this.released = true;
    for (const t of this.savedTensors) t._releaseInternal();
    this.savedTensors = [];
  }

  /** Drops one holder; the last one frees this node and unrefs its inputs' nodes. */
  unref(): void {
    if (--this.refs > 0) return;
    this.releaseSaved();
    for (const e of this.next) if (e && 'node' in e) e.node.unref();
  }
}
