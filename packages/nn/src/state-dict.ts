import { BackendError, KilnError, noGrad, type Tensor } from '@kiln/core';
import type { Module } from './module.js';

/** Tensors under PyTorch's dotted keys (`layer1.0.bn1.running_mean`), in PyTorch's order. */
export type StateDict = Record<string, Tensor>;

/** Options of Module.stateDict(). */
export interface StateDictOptions {
  /** Prepended to every key. */
  prefix?: string;
  /** Return the parameters and buffers themselves instead of detached aliases. */
  keepVars?: boolean;
}

/** What loadStateDict returns (PyTorch's _IncompatibleKeys); both empty under strict loading. */
export interface LoadResult {
  /** Keys the module has that the state dict lacked. */
  missingKeys: string[];
  /** Keys of the state dict the module does not have. */
  unexpectedKeys: string[];
}

/**
 * loadStateDict's error: every missing key, unexpected key and shape
 * mismatch at once, worded as PyTorch's RuntimeError.
 */
export class StateDictError extends KilnError {
  /** Always 'StateDictError'. */
  override name = 'StateDictError';
  /** The error loadStateDict (strict) throws, with PyTorch's message. */
  constructor(
    moduleName: string,
    /** Keys the module has that the state dict lacked. */
    readonly missingKeys: string[],
    /** Keys of the state dict the module does not have. */
    readonly unexpectedKeys: string[],
    /** One line per problem, as PyTorch's error_msgs. */
    readonly errorMessages: string[],
  ) {
    super('loadStateDict', `Error(s) in loading state_dict for ${moduleName}:\n\t${errorMessages.join('\n\t')}`);
  }
}

const shapeText = (s: readonly number[]) => `[${s.join(', ')}]`;

/** Module.stateDict(): each module's parameters then persistent buffers, then its children's. */
export function stateDictOf(root: Module, opts: StateDictOptions): StateDict {
  const out: StateDict = {};
  const visit = (m: Module, prefix: string) => {
    for (const [name, p] of m._parameters) if (p) out[prefix + name] = opts.keepVars ? p : p.detach();
    for (const [name, b] of m._buffers) {
      if (b && !m._nonPersistentBuffers.has(name)) out[prefix + name] = opts.keepVars ? b : b.detach();
    }
    for (const [name, child] of m._modules) if (child) visit(child, `${prefix}${name}.`);
  };
  visit(root, opts.prefix ?? '');
  return out;
}

/** Module.loadStateDict(), following PyTorch's load_state_dict step by step. */
export function loadStateDictInto(root: Module, input: StateDict | Map<string, Tensor>, strict: boolean): LoadResult {
  if (typeof input !== 'object' || input === null) throw new KilnError('loadStateDict', `expected state_dict to be dict-like, got ${input === null ? 'null' : typeof input}`);
  const sd = input instanceof Map ? new Map(input) : new Map(Object.entries(input));
  const missing: string[] = [];
  const unexpected: string[] = [];
  const errors: string[] = [];
  const load = (m: Module, local: Map<string, Tensor>, prefix: string) => {
    m._loadFromStateDict(local, prefix, missing, unexpected, errors);
    for (const [name, child] of m._modules) {
      if (!child) continue;
      const childPrefix = `${prefix}${name}.`;
      load(child, new Map([...local].filter(([k]) => k.startsWith(childPrefix))), childPrefix);
    }
  };
  load(root, sd, '');
  if (strict) {
    if (unexpected.length) errors.unshift(`Unexpected key(s) in state_dict: ${unexpected.map((k) => `"${k}"`).join(', ')}. `);
    if (missing.length) errors.unshift(`Missing key(s) in state_dict: ${missing.map((k) => `"${k}"`).join(', ')}. `);
  }
  if (errors.length) throw new StateDictError(root._getName(), missing, unexpected, errors);
  return { missingKeys: missing, unexpectedKeys: unexpected };
}

/** Copies one module's own parameters and persistent buffers from `sd` (PyTorch's _load_from_state_dict). */
export function loadOwnEntries(m: Module, sd: Map<string, Tensor>, prefix: string, missing: string[], unexpected: string[], errors: string[]): void {
  const local = new Map<string, Tensor>();
  for (const [k, v] of m._parameters) if (v) local.set(k, v);
  for (const [k, v] of m._buffers) if (v && !m._nonPersistentBuffers.has(k)) local.set(k, v);
  for (const [name, dst] of local) {
    const key = prefix + name;
    const src = sd.get(key);
    if (src === undefined) {
      missing.push(key);
      continue;
    }
    if (!(src as { _isKilnTensor?: boolean })?._isKilnTensor) {
      errors.push(`While copying the parameter named "${key}", expected a Tensor from checkpoint but received ${src === null ? 'null' : typeof src}`);
      continue;
    }
    if (src.shape.join() !== dst.shape.join()) {
      errors.push(`size mismatch for ${key}: copying a param with shape ${shapeText(src.shape)} from checkpoint, the shape in current model is ${shapeText(dst.shape)}.`);
      continue;
    }
    try {
      copyInto(dst, src);
    } catch (e) {
      errors.push(`While copying the parameter named "${key}", whose dimensions in the model are ${shapeText(dst.shape)} and whose dimensions in the checkpoint are ${shapeText(src.shape)}, an exception occurred: ${(e as Error).message}`);
    }
  }
  for (const key of sd.keys()) {
    if (!key.startsWith(prefix)) continue;
    const first = key.slice(prefix.length).split('.', 1)[0]!;
    if (!m._modules.has(first) && !local.has(first)) unexpected.push(key);
  }
}

/** dst.copy_(src) without autograd, bringing src over from another backend when it can be read synchronously. */
function copyInto(dst: Tensor, src: Tensor): void {
  noGrad(() => {
    if (src.device === dst.device) {
      dst.copy_(src);
      return;
    }
    let moved: Tensor;
    try {
      moved = src.to(dst.device);
    } catch (e) {
      if (e instanceof BackendError) throw new BackendError('loadStateDict', `the checkpoint tensor is on ${src.device} and the module on ${dst.device}; move the state dict to cpu first (await t.toDevice('cpu'))`);
      throw e;
    }
    try {
      dst.copy_(moved);
    } finally {
      moved.dispose();
    }
  });
}
