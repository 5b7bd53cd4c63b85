import { asyncBodyError, isThenable } from '../scope.js';

let enabled = true;

/** True when ops record the autograd graph (PyTorch's torch.is_grad_enabled). */
export function isGradEnabled(): boolean {
  return enabled;
}

/** Sets grad mode globally; returns the previous value. */
export function setGradEnabled(value: boolean): boolean {
  const prev = enabled;
  enabled = value;
  return prev;
}

function runWithMode<T>(scope: string, mode: boolean, fn: () => T): T {
  const prev = setGradEnabled(mode);
  let result: T;
  try {
    result = fn();
  } finally {
    setGradEnabled(prev);
  }
  if (isThenable(result)) throw asyncBodyError(scope, result, ASYNC_MODE_ADVICE);
  return result;
}

const ASYNC_MODE_ADVICE =
  'grad mode is one global flag, so while it waits other tasks would run in its mode, and overlapping bodies would restore it out of order. Keep the body synchronous and await outside it (`const y = noGrad(() => model.call(x)); await y.toArray();`), or set the mode yourself with setGradEnabled()';

/**
 * Runs `fn` without recording gradients (torch.no_grad()) and returns its
 * result. `fn` must be synchronous: one that returns a promise is rejected
 * with a KilnError (grad mode is restored first), see tidy()'s note.
 */
export function noGrad<T>(fn: () => T): T {
  return runWithMode('noGrad', false, fn);
}

/**
 * Runs `fn` with gradient recording on, even inside noGrad
 * (torch.enable_grad()). `fn` must be synchronous, as for {@link noGrad}.
 */
export function enableGrad<T>(fn: () => T): T {
  return runWithMode('enableGrad', true, fn);
}
