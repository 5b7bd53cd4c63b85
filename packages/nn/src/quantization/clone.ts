/**
 * A structural copy of a module tree, so quantization can return a new
 * model without changing the float one (PyTorch deep-copies; Kiln copies
 * the modules and shares the tensors of layers it does not replace).
 */
import { Module } from '../module.js';

/**
 * Copies every module of the tree (own attributes, parameter/buffer/child
 * maps, hooks); parameters and buffers are the same tensor objects.
 */
export function copyModuleTree<M extends Module>(m: M): M {
  // Module's constructor (not the subclass's) builds the routed object with m's prototype.
  const c = Reflect.construct(Module, [], m.constructor as new () => Module) as M;
  for (const [key, desc] of Object.entries(Object.getOwnPropertyDescriptors(m))) {
    if (key.startsWith('_') && (desc.value instanceof Map || desc.value instanceof Set)) continue;
    Object.defineProperty(c, key, desc);
  }
  c._parameters = new Map(m._parameters);
  c._buffers = new Map(m._buffers);
  c._nonPersistentBuffers = new Set(m._nonPersistentBuffers);
  c._forwardPreHooks = new Map(m._forwardPreHooks);
  c._forwardHooks = new Map(m._forwardHooks);
  c._modules = new Map([...m._modules].map(([k, v]) => [k, v ? copyModuleTree(v) : null]));
  return c;
}

/** Replaces, in place, every module of the tree for which `fn` returns a module; children of replaced modules are not visited. */
export async function replaceModules(root: Module, fn: (m: Module, path: string) => Promise<Module | null> | Module | null, prefix = ''): Promise<void> {
  for (const [name, child] of [...root._modules]) {
    if (!child) continue;
    const path = prefix ? `${prefix}.${name}` : name;
    const r = await fn(child, path);
    if (r) root._modules.set(name, r);
    else await replaceModules(child, fn, path);
  }
}
