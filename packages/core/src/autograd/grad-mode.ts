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

function runWithMode<T>(mode: boolean, fn: () => T): T {
  const prev = setGradEnabled(mode);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    setGradEnabled(prev);
    throw e;
  }
  if (result instanceof Promise) {
    // An async body keeps the mode until it settles; other code running in
    // between sees the same mode, as with a global flag in PyTorch.
    return result.finally(() => setGradEnabled(prev)) as T;
  }
  setGradEnabled(prev);
  return result;
}

/** Runs `fn` without recording gradients (torch.no_grad()). */
export function noGrad<T>(fn: () => T): T {
  return runWithMode(false, fn);
}

/** Runs `fn` with gradient recording on, even inside noGrad (torch.enable_grad()). */
export function enableGrad<T>(fn: () => T): T {
  return runWithMode(true, fn);
}
