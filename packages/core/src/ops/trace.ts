// The tracing hook behind ONNX export (and any later graph capture).
//
// Every op reports itself once, from core's `finish` step, as the op the user
// meant: conv2d with its fused epilogue, batchNorm with its statistics,
// linear / flatten / softmax as themselves rather than the primitives they
// compose (`tracedAs`). An in-place op is reported as the out-of-place op that
// computes its value, followed by `assign` (this tensor now holds that value).
// Creation ops are not reported: a tensor the tracer has never seen is a
// constant, read at export time. When no tracer is active each hook is one
// null check.
import type { Tensor } from '../tensor.js';

/** One op as a tracer sees it: name, inputs (tensors or plain values), attributes and outputs. */
export interface TracedOp {
  /** The op's name, as the user called it (conv2d, linear, batchNorm, ...). */
  op: string;
  /** Tensors and plain values, in the op's argument order. */
  inputs: readonly unknown[];
  /** The op's options (stride, dim, eps, ...). */
  attrs: Record<string, unknown>;
  /** The tensors it produced. */
  outputs: readonly unknown[];
}

/** Receives a trace: the ops in execution order and the in-place writes between them. */
export interface Tracer {
  /** An op ran; its output tensors are new values. */
  op(op: TracedOp): void;
  /**
   * The in-place op `op` made `target` hold `source`'s value (the op itself
   * was reported just before, with `source` as its output).
   */
  assign(target: Tensor, source: Tensor, op: string): void;
}

let active: Tracer | null = null;
let suspended = 0;

/**
 * Runs `fn` with every op reported to `tracer` (an object with `op` and
 * `assign`, or just an op callback, which then does not see in-place
 * writes). Tracers do not nest: the inner one replaces the outer one.
 */
export function withTracer<T>(tracer: Tracer | ((op: TracedOp) => void), fn: () => T): T {
  const prev = active;
  const prevSuspended = suspended;
  active = typeof tracer === 'function' ? { op: tracer, assign: () => {} } : tracer;
  suspended = 0;
  try {
    return fn();
  } finally {
    active = prev;
    suspended = prevSuspended;
  }
}

/** True while a tracer is active and not suspended by {@link untraced}. */
export function isTracing(): boolean {
  return active !== null && suspended === 0;
}

/** Called by every op once: a no-op unless a tracer is active. */
export function traceOp(op: string, inputs: readonly unknown[], attrs: Record<string, unknown>, outputs: readonly unknown[]): void {
  if (active && suspended === 0) active.op({ op, inputs, attrs, outputs });
}

/** Reports that an in-place op made `target` hold `source`'s value. */
export function traceAssign(target: Tensor, source: Tensor, op: string): void {
  if (active && suspended === 0) active.assign(target, source, op);
}

/** Runs `fn` without reporting its ops (an op's internal helpers, running-stat updates). */
export function untraced<T>(fn: () => T): T {
  if (!active) return fn();
  suspended++;
  try {
    return fn();
  } finally {
    suspended--;
  }
}

/**
 * Runs the composite `fn` and reports it as the single op `op` on `inputs`
 * (linear as linear, not transpose + matmul + add). Autograd still records
 * the primitives inside.
 */
export function tracedAs(op: string, inputs: readonly unknown[], attrs: Record<string, unknown>, fn: () => Tensor): Tensor {
  if (!active || suspended > 0) return fn();
  const out = untraced(fn);
  if (!inputs.includes(out)) traceOp(op, inputs, attrs, [out]);
  return out;
}
