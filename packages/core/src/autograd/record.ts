import type { Tensor } from '../tensor.js';
import { Node, type BackwardFn, type Edge, type SavedTensorHooks } from './node.js';
import { isGradEnabled } from './grad-mode.js';
import { traceOp } from '../ops/trace.js';

/** True when an op on these inputs must be recorded on the tape. */
export function needsGrad(...inputs: readonly unknown[]): boolean {
  if (!isGradEnabled()) return false;
  return inputs.some((t) => (t as Tensor | null)?._isKilnTensor && (t as Tensor).requiresGrad);
}

const savedHooks: SavedTensorHooks[] = [];

/**
 * Runs `fn` with `hooks` packing every tensor a recorded op saves for
 * backward (the innermost hooks win, as PyTorch's saved_tensors_hooks).
 * Checkpointing uses it to save nothing and recompute in backward.
 */
export function withSavedTensorHooks<T>(hooks: SavedTensorHooks, fn: () => T): T {
  savedHooks.push(hooks);
  try {
    return fn();
  } finally {
    savedHooks.splice(savedHooks.lastIndexOf(hooks), 1);
  }
}

/** The saved-tensor hooks a node recorded now must use (null: save the tensors themselves). */
export function currentSavedHooks(): SavedTensorHooks | null {
  return savedHooks[savedHooks.length - 1] ?? null;
}

/** @internal The edge from a consumer to `t`'s producer (null when `t` needs no gradient). */
export function edgeOf(t: unknown): Edge {
  const x = t as Tensor | null;
  if (!x?._isKilnTensor || !x.requiresGrad) return null;
  return x.gradFn ? { node: x.gradFn } : { leaf: x };
}

/**
 * Records `out = op(inputs)` on the tape when any input requires grad.
 * `backward` returns one gradient per entry of `inputs` (null where none).
 * `saved` tensors are kept alive (and version-checked) until backward.
 */
export function record(out: Tensor, name: string, inputs: readonly unknown[], saved: readonly Tensor[], backward: BackwardFn): Tensor {
  if (!needsGrad(...inputs)) return out;
  out._setGradFn(new Node(name, inputs.map(edgeOf), backward, [...saved], currentSavedHooks()));
  return out;
}

/** Records the op for autograd and for a tracer (ONNX export); returns `out`. */
export function finish(out: Tensor, op: string, inputs: readonly unknown[], attrs: Record<string, unknown>, saved: readonly Tensor[], backward: BackwardFn | null): Tensor {
  traceOp(op, inputs, attrs, [out]);
  if (backward) record(out, `${op[0]!.toUpperCase()}${op.slice(1)}Backward0`, inputs, saved, backward);
  return out;
}
