// The effective tensor of a module member: what forward really uses.
//
// A forward pre-hook may re-derive a tensor attribute from other members
// before each forward (pruning sets `weight = weight_orig * weight_mask`).
// Fast paths that skip a module's call() (BatchNorm folding, fused
// epilogues, ONNX export) must still see that value, so such hooks declare
// what they derive (a TensorDerivation) and Module.effectiveTensor(name)
// computes it on demand. The derived value is owned by the module: cached
// while its sources are unchanged (identity, memory and version) and no
// gradient is needed, recomputed otherwise, and the previous value disposed,
// so neither eval nor training forwards leak one tensor per call.
import { isGradEnabled, keep, tidy, type Tensor } from '@kiln/core';
import type { ForwardPreHook, Module } from './module.js';

/**
 * How a forward pre-hook derives a tensor attribute of its module from other
 * members (pruning's `weight` from `weight_orig` and `weight_mask`).
 */
export interface TensorDerivation {
  /** The attribute the hook sets before forward, e.g. `'weight'`. */
  readonly tensorName: string;
  /** Computes the attribute's value from the module's members now (records autograd when grad mode is on). */
  derive(module: Module): Tensor;
  /** The member tensors the value is computed from; the cached value is reused while these are unchanged. */
  sources(module: Module): (Tensor | null)[];
}

/** A forward pre-hook built by {@link derivingPreHook}: it carries its {@link TensorDerivation}. */
export interface DerivingPreHook extends ForwardPreHook {
  /** What the hook derives: the tensor it sets and how. */
  readonly derivation: TensorDerivation;
}

/**
 * The forward pre-hook that sets `module[derivation.tensorName]` to its
 * effective value before each forward; register it with
 * `module.registerForwardPreHook(derivingPreHook(d))`. Because it declares
 * what it derives, fast paths may skip the module's call() and read
 * {@link Module.effectiveTensor} instead.
 */
export function derivingPreHook(derivation: TensorDerivation): DerivingPreHook {
  const hook = (module: Module) => {
    effectiveTensorOf(module, derivation.tensorName);
  };
  return Object.assign(hook, { derivation });
}

/** The derivation a forward pre-hook declares, or null for an ordinary hook. */
export function derivationOf(hook: unknown): TensorDerivation | null {
  return typeof hook === 'function' && 'derivation' in hook ? ((hook as DerivingPreHook).derivation ?? null) : null;
}

interface Derived {
  value: Tensor;
  sources: (Tensor | null)[];
  states: (readonly [number, number, number] | null)[];
}

const derivedOf = new WeakMap<Module, Map<string, Derived>>();

const stateOf = (t: Tensor | null) => (t && !t.isDisposed ? ([t.dataPtr(), t.offset, t.version] as const) : null);

function isCurrent(d: Derived, sources: (Tensor | null)[]): boolean {
  if (d.value.isDisposed || d.sources.length !== sources.length) return false;
  return sources.every((t, i) => {
    if (t !== d.sources[i]) return false;
    const was = d.states[i];
    const now = stateOf(t);
    return was === now || (was !== null && now !== null && was[0] === now[0] && was[1] === now[1] && was[2] === now[2]);
  });
}

/** The last forward pre-hook of `module` that derives `name`, if any. */
function derivationFor(module: Module, name: string): TensorDerivation | null {
  let found: TensorDerivation | null = null;
  for (const hook of module._forwardPreHooks.values()) {
    const d = derivationOf(hook);
    if (d && d.tensorName === name) found = d;
  }
  return found;
}

/** Module.effectiveTensor(): see its documentation. */
export function effectiveTensorOf(module: Module, name: string): Tensor | null {
  const derivation = derivationFor(module, name);
  if (!derivation) {
    if (module._parameters.has(name)) return module._parameters.get(name) ?? null;
    if (module._buffers.has(name)) return module._buffers.get(name) ?? null;
    const v = (module as unknown as Record<string, unknown>)[name];
    return typeof v === 'object' && v !== null && (v as { _isKilnTensor?: boolean })._isKilnTensor ? (v as Tensor) : null;
  }
  let table = derivedOf.get(module);
  if (!table) derivedOf.set(module, (table = new Map()));
  const sources = derivation.sources(module);
  const old = table.get(name);
  // Each forward that records autograd needs its own graph from the sources.
  const gradNeeded = isGradEnabled() && sources.some((s) => s?.requiresGrad);
  if (old && !gradNeeded && isCurrent(old, sources)) {
    setAttribute(module, name, old.value);
    return old.value;
  }
  const value = keep(tidy(() => derivation.derive(module)));
  table.set(name, { value, sources, states: sources.map(stateOf) });
  setAttribute(module, name, value);
  // Autograd keeps its own references to what a pending backward needs.
  if (old && old.value !== value) old.value.dispose();
  return value;
}

function setAttribute(module: Module, name: string, value: Tensor): void {
  if ((module as unknown as Record<string, unknown>)[name] !== value) (module as unknown as Record<string, unknown>)[name] = value;
}

/**
 * Disposes the derived value cached for `name` (every name when omitted) and
 * deletes the attribute it was set to; the next forward derives it again.
 */
export function releaseDerived(module: Module, name?: string): void {
  const table = derivedOf.get(module);
  if (!table) return;
  for (const [key, d] of [...table]) {
    if (name !== undefined && key !== name) continue;
    table.delete(key);
    if ((module as unknown as Record<string, unknown>)[key] === d.value) Reflect.deleteProperty(module, key);
    d.value.dispose();
  }
}

/**
 * True when a fast path may skip `module.call()` and read its tensors through
 * {@link Module.effectiveTensor} instead: it has no forward hooks, and each
 * forward pre-hook is one that declares the tensor it derives (pruning's).
 * Any other hook could change what forward does, so the caller must run the
 * module layer by layer.
 */
export function hooksAllowFastPath(module: Module): boolean {
  if (module._forwardHooks.size > 0) return false;
  for (const hook of module._forwardPreHooks.values()) if (!derivationOf(hook)) return false;
  return true;
}
