import { KilnError } from '@kiln/core';
import { Module } from '../module.js';

function indexOf(op: string, i: number, length: number): number {
  if (!Number.isInteger(i) || i < -length || i >= length) throw new KilnError(op, `index ${i} is out of range for a container of length ${length}`);
  return i < 0 ? i + length : i;
}

/** Re-registers `modules` under keys '0', '1', ... (after an insert). */
/** Registers `module` under the next index of a numbered container. */
function appendTo<M extends Module>(container: M, module: Module): M {
  container.registerModule(String(container._modules.size), module);
  return container;
}

/** Inserts `module` before `index` in a numbered container, renumbering the rest. */
function insertInto<M extends Module>(container: M, index: number, module: Module): M {
  const list = [...container._modules.values()] as Module[];
  list.splice(index < 0 ? index + list.length : index, 0, module);
  renumber(container, list);
  return container;
}

function renumber(m: Module, modules: Module[]): void {
  m._modules.clear();
  modules.forEach((child, i) => m.registerModule(String(i), child));
}

/**
 * Modules applied in order (torch.nn.Sequential). Indexable like PyTorch's:
 * `seq[0]` (or `seq.at(-1)`), `seq.length`, `for (const m of seq)`.
 * `new Sequential(a, b)` names children '0', '1'; `new Sequential({ conv: a, relu: b })` names them.
 */
export class Sequential extends Module {
  [index: number]: Module;

  /** Children numbered 0, 1, ... in order, or named by a record. */
  constructor(...modules: Module[] | [Record<string, Module>]) {
    super();
    const first = modules[0];
    if (modules.length === 1 && first && !(first instanceof Module)) {
      for (const [name, m] of Object.entries(first)) this.registerModule(name, m);
    } else {
      (modules as Module[]).forEach((m, i) => this.registerModule(String(i), m));
    }
  }

  /** Number of children. */
  get length(): number {
    return this._modules.size;
  }

  /** The i-th child (negative counts from the end). */
  at(i: number): Module {
    return [...this._modules.values()][indexOf('Sequential.at', i, this.length)]!;
  }

  /** Children i..j as a new Sequential keeping their names (PyTorch's seq[i:j]). */
  slice(start?: number, end?: number): Sequential {
    return new Sequential(Object.fromEntries([...this._modules].slice(start, end)) as Record<string, Module>);
  }

  /** Adds `module` at the end; returns this. */
  append(module: Module): this {
    return appendTo(this, module);
  }

  /** Appends every module; returns this. */
  extend(modules: Iterable<Module>): this {
    for (const m of modules) appendTo(this, m);
    return this;
  }

  /** Inserts `module` before position `index`; returns this. */
  insert(index: number, module: Module): this {
    return insertInto(this, index, module);
  }

  /** The children in order. */
  [Symbol.iterator](): Iterator<Module> {
    return ([...this._modules.values()] as Module[])[Symbol.iterator]();
  }

  /** Feeds the input through every child in order. */
  override forward(input: any): any {
    let x = input;
    for (const m of this) x = m.call(x);
    return x;
  }
}

/** A list of modules, registered so their parameters are the owner's (torch.nn.ModuleList). */
export class ModuleList extends Module {
  [index: number]: Module;

  /** Children numbered 0, 1, ... in order. */
  constructor(modules: Iterable<Module> = []) {
    super();
    for (const m of modules) this.append(m);
  }

  /** Number of modules. */
  get length(): number {
    return this._modules.size;
  }

  /** The i-th module (negative counts from the end). */
  at(i: number): Module {
    return [...this._modules.values()][indexOf('ModuleList.at', i, this.length)]!;
  }

  /** Adds `module` at the end; returns this. */
  append(module: Module): this {
    return appendTo(this, module);
  }

  /** Appends every module; returns this. */
  extend(modules: Iterable<Module>): this {
    for (const m of modules) appendTo(this, m);
    return this;
  }

  /** Inserts `module` before position `index`. */
  insert(index: number, module: Module): void {
    insertInto(this, index, module);
  }

  /** The children in order. */
  [Symbol.iterator](): Iterator<Module> {
    return ([...this._modules.values()] as Module[])[Symbol.iterator]();
  }
}

/** Modules under string keys, in insertion order (torch.nn.ModuleDict). */
export class ModuleDict extends Module {
  /** Children under the given names, in order. */
  constructor(modules: Record<string, Module> | Iterable<[string, Module]> = {}) {
    super();
    this.update(modules);
  }

  /** The module under `key` (throws when absent, as PyTorch's KeyError). */
  get(key: string): Module {
    const m = this._modules.get(key);
    if (!m) throw new KilnError('ModuleDict', `no module under key '${key}'`);
    return m;
  }

  /** Registers `module` under `key`. */
  set(key: string, module: Module): this {
    this.registerModule(key, module);
    return this;
  }

  /** True when a child is registered under `key`. */
  has(key: string): boolean {
    return this._modules.has(key);
  }

  /** Removes and returns the module under `key` (PyTorch's pop). */
  pop(key: string): Module {
    const m = this.get(key);
    this._modules.delete(key);
    return m;
  }

  /** Removes every child. */
  clear(): void {
    this._modules.clear();
  }

  /** The keys in order. */
  keys(): string[] {
    return [...this._modules.keys()];
  }

  /** The children in order. */
  values(): Module[] {
    return [...this._modules.values()] as Module[];
  }

  /** [key, child] pairs in order. */
  entries(): [string, Module][] {
    return [...this._modules] as [string, Module][];
  }

  /** Number of children. */
  get size(): number {
    return this._modules.size;
  }

  /** Adds or replaces entries. */
  update(modules: Record<string, Module> | Iterable<[string, Module]>): void {
    const pairs = Symbol.iterator in modules ? [...(modules as Iterable<[string, Module]>)] : Object.entries(modules);
    for (const [k, m] of pairs) this.set(k, m);
  }

  /** The keys in order (as PyTorch's ModuleDict). */
  [Symbol.iterator](): Iterator<string> {
    return this.keys()[Symbol.iterator]();
  }
}
