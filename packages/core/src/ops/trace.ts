/** One op as a tracer sees it: name, inputs (tensors or plain values), attributes and outputs. */
export interface TracedOp {
  op: string;
  inputs: readonly unknown[];
  attrs: Record<string, unknown>;
  outputs: readonly unknown[];
}

let tracer: ((op: TracedOp) => void) | null = null;

/**
 * Runs `fn` with every op reported to `onOp` (the hook an ONNX exporter
 * uses to record a graph). Tracers do not nest.
 */
export function withTracer<T>(onOp: (op: TracedOp) => void, fn: () => T): T {
  const prev = tracer;
  tracer = onOp;
  try {
    return fn();
  } finally {
    tracer = prev;
  }
}

/** Called by every op once: a no-op unless a tracer is active. */
export function traceOp(op: string, inputs: readonly unknown[], attrs: Record<string, unknown>, outputs: readonly unknown[]): void {
  if (tracer) tracer({ op, inputs, attrs, outputs });
}
