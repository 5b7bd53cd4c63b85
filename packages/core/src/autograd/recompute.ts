// Whether a checkpoint is re-running a forward inside backward. Ops and
// modules with side effects outside their outputs (BatchNorm's running
// statistics and batch counter) skip them then, so a checkpointed training
// step updates them once, as the un-checkpointed step does.
let depth = 0;

/**
 * True while checkpoint() re-runs a forward to rebuild its saved tensors.
 * BatchNorm does not update its running statistics then (PyTorch's
 * checkpoint does update them a second time).
 */
export function isRecomputing(): boolean {
  return depth > 0;
}

/** @internal Runs `fn` marked as a recomputation. */
export function recomputing<T>(fn: () => T): T {
  depth++;
  try {
    return fn();
  } finally {
    depth--;
  }
}
