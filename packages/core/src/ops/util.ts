import { Tensor } from '../tensor.js';
import { getBackend, type Backend } from '../backend.js';
import type { DType } from '../dtype.js';
import { BackendError, KilnError, fmtShape } from '../errors.js';
import { StorageRef } from '../storage.js';
import { contiguousStrides, numel, checkShape } from '../shape.js';

/** A tensor operand or a plain number (a scalar operand, as in PyTorch). */
export type TensorOrScalar = Tensor | number;

/**
 * The op that last chose a backend: every op calls {@link commonBackend}
 * before it allocates its outputs, so an allocation that fails is reported
 * under the op the user called.
 */
let allocatingOp = 'alloc';

/** The common backend of an op's tensor inputs; rejects mixed devices and disposed tensors. */
export function commonBackend(op: string, inputs: readonly unknown[]): Backend {
  allocatingOp = op;
  let backend: Backend | null = null;
  for (const x of inputs) {
    const t = x as Tensor | null;
    if (!t?._isKilnTensor) continue;
    t._checkAlive(op);
    const b = t._storage.backend;
    if (backend && backend !== b) {
      if (backend.name === b.name) {
        throw new BackendError(op, `expected all tensors to be on the same device, but found tensors of two '${b.name}' backends: one was replaced (initWebGPU() after a device loss), its tensors cannot be used`);
      }
      throw new BackendError(op, `expected all tensors to be on the same device, but found at least two devices, ${backend.name} and ${b.name}`);
    }
    backend = b;
  }
  return backend ?? getBackend();
}

/**
 * A fresh contiguous tensor on `backend` with unspecified contents. A
 * backend that refuses the allocation (a device limit, a memory cap) gets
 * its error re-thrown under `op`, with the tensor's shape and dtype.
 */
export function empty(shape: readonly number[], dtype: DType, backend: Backend, op = allocatingOp): Tensor {
  const s = checkShape('empty', shape);
  let data;
  try {
    data = backend.alloc(numel(s), dtype);
  } catch (e) {
    if (!(e instanceof BackendError)) throw e;
    const reason = e.message.slice(e.op.length + 2);
    // 'alloc' marks a refused size (a device limit, a memory cap); anything else (a lost device) keeps its words.
    throw new BackendError(op, e.op === 'alloc' ? `cannot allocate a ${dtype} tensor of shape ${fmtShape(s)} on ${backend.name}: ${reason}` : reason);
  }
  return Tensor._fromStorage(new StorageRef(backend, data), s, contiguousStrides(s), 0, dtype);
}

/** Rejects a non-tensor where a tensor is required. */
export function expectTensor(op: string, x: unknown, what = 'input'): Tensor {
  if (!(x as Tensor | null)?._isKilnTensor) throw new KilnError(op, `expected ${what} to be a Tensor, got ${typeof x === 'object' ? String(x) : typeof x}`);
  return x as Tensor;
}

/** Reduces a broadcast gradient back to `shape` (sum over broadcast dims). */
export function sumTo(g: Tensor, shape: readonly number[]): Tensor {
  if (g.shape.length === shape.length && g.shape.every((d, i) => d === shape[i])) return g;
  const lead = g.shape.length - shape.length;
  const dims: number[] = [];
  for (let i = 0; i < g.shape.length; i++) {
    if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) dims.push(i);
  }
  let r = dims.length ? g.sum(dims, true) : g;
  if (lead > 0) r = r.reshape([...shape]);
  return r;
}

/** Rejects disposed tensors among an op's inputs, naming the op the user called. */
export function checkAlive(op: string, ...inputs: unknown[]): void {
  for (const x of inputs) if ((x as Tensor | null)?._isKilnTensor) (x as Tensor)._checkAlive(op);
}
