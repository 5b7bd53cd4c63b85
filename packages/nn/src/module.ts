import { KilnError, type Tensor } from '@kiln/core';
import { isParameter, isTensor, parameter } from './parameter.js';
import { addIndent } from './repr.js';
import { castFloatingTensors } from './amp/cast-module.js';
import { effectiveTensorOf, releaseDerived } from './effective-tensor.js';
import { loadOwnEntries, loadStateDictInto, stateDictOf, type LoadResult, type StateDict, type StateDictOptions } from './state-dict.js';

/** Called before forward with the module and its arguments; returning an array replaces the arguments. */
export type ForwardPreHook<M extends Module = Module> = (module: M, args: unknown[]) => unknown;
/** Called after forward with the module, its arguments and output; returning a value replaces the output. */
export type ForwardHook<M extends Module = Module> = (module: M, args: unknown[], output: unknown) => unknown;

/** What registerForwardHook / registerForwardPreHook return: `remove()` unregisters the hook. */
export interface RemovableHandle {
  /** The hook's number, unique in this process. */
  readonly id: number;
  /** Unregisters the hook; a second call does nothing. */
  remove(): void;
}

let nextHookId = 0;

/**
 * Routes property access so that, as in PyTorch, assigning a Module or a
 * Parameter to a property registers it (and assigning over a registered
 * name replaces it), while reading finds registered members after the
 * object's own properties and methods (PyTorch's __getattr__).
 */
const routing: ProxyHandler<Module> = {
  get(target, key, receiver) {
    if (typeof key === 'string' && !(key in target)) {
      if (target._parameters.has(key)) return target._parameters.get(key);
      if (target._buffers.has(key)) return target._buffers.get(key);
      if (target._modules.has(key)) return target._modules.get(key);
    }
    return Reflect.get(target, key, receiver);
  },
  set(target, key, value, receiver) {
    if (typeof key === 'string' && assignMember(target, key, value)) return true;
    return Reflect.set(target, key, value, receiver);
  },
  defineProperty(target, key, desc) {
    if (typeof key === 'string' && 'value' in desc && assignMember(target, key, desc.value)) return true;
    return Reflect.defineProperty(target, key, desc);
  },
  deleteProperty(target, key) {
    if (typeof key === 'string') {
      for (const map of [target._parameters, target._buffers, target._modules] as Map<string, unknown>[]) {
        if (map.delete(key)) {
          target._nonPersistentBuffers.delete(key);
          return true;
        }
      }
    }
    return Reflect.deleteProperty(target, key);
  },
  has(target, key) {
    return Reflect.has(target, key) || (typeof key === 'string' && isMember(target, key));
  },
};

function isMember(m: Module, key: string): boolean {
  return m._parameters.has(key) || m._buffers.has(key) || m._modules.has(key);
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (isTensor(v)) return 'Tensor';
  return typeof v === 'object' ? ((v as object).constructor?.name ?? 'object') : typeof v;
}

/** Registers `value` under `key` when it is (or replaces) a member; false for plain attributes. */
function assignMember(m: Module, key: string, value: unknown): boolean {
  const forget = () => {
    Reflect.deleteProperty(m, key);
    m._parameters.delete(key);
    m._buffers.delete(key);
    m._modules.delete(key);
    m._nonPersistentBuffers.delete(key);
  };
  if (isParameter(value)) {
    if (!value.isLeaf) throw new KilnError('Module', `cannot assign a non-leaf Tensor to parameter '${key}'`);
    forget();
    m._parameters.set(key, value);
    return true;
  }
  if (m._parameters.has(key)) {
    if (value !== null && value !== undefined) {
      throw new KilnError('Module', `cannot assign '${typeName(value)}' as parameter '${key}' (a Parameter or null expected; wrap a tensor with parameter(t))`);
    }
    m._parameters.set(key, null);
    return true;
  }
  if (value instanceof Module) {
    forget();
    m._modules.set(key, value);
    return true;
  }
  if (m._modules.has(key)) {
    if (value !== null && value !== undefined) throw new KilnError('Module', `cannot assign '${typeName(value)}' as child module '${key}' (a Module or null expected)`);
    m._modules.set(key, null);
    return true;
  }
  if (m._buffers.has(key)) {
    if (value !== null && value !== undefined && !isTensor(value)) throw new KilnError('Module', `cannot assign '${typeName(value)}' as buffer '${key}' (a Tensor or null expected)`);
    m._buffers.set(key, (value ?? null) as Tensor | null);
    return true;
  }
  return false;
}

function checkName(m: Module, kind: string, name: string): void {
  if (typeof name !== 'string') throw new KilnError(`register${kind}`, `${kind.toLowerCase()} name should be a string, got ${typeof name}`);
  if (name === '') throw new KilnError(`register${kind}`, `${kind.toLowerCase()} name can't be empty string ""`);
  if (name.includes('.')) throw new KilnError(`register${kind}`, `${kind.toLowerCase()} name can't contain ".", got "${name}"`);
  if (name in m && !isMember(m, name)) throw new KilnError(`register${kind}`, `attribute '${name}' already exists`);
}

/** Modules whose to() has not finished, with the device they are moving to. */
const moving = new WeakMap<Module, string>();

/**
 * Base class of every layer and model (torch.nn.Module). Assigning a Module
 * or a {@link parameter} to a property registers it, so class fields work:
 *
 * ```ts
 * class Net extends Module {
 *   conv = new Conv2d(3, 8, 3);
 *   fc = new Linear(8, 10);
 *   forward(x: Tensor): Tensor { return this.fc.call(this.conv.call(x).mean([2, 3])); }
 * }
 * const net = new Net();
 * net.fc = new Linear(8, 2);   // replaces the head, as in PyTorch
 * ```
 *
 * `call(...)` is PyTorch's `module(...)`: forward pre-hooks, forward, forward hooks.
 */
export class Module {
  /** True in training mode (dropout active, batch-norm batch statistics); see train()/eval(). */
  training = true;
  /** @internal */ _parameters = new Map<string, Tensor | null>();
  /** @internal */ _buffers = new Map<string, Tensor | null>();
  /** @internal */ _nonPersistentBuffers = new Set<string>();
  /** @internal */ _modules = new Map<string, Module | null>();
  /** @internal */ _forwardPreHooks = new Map<number, ForwardPreHook<any>>();
  /** @internal */ _forwardHooks = new Map<number, ForwardHook<any>>();

  /** An empty module; subclasses register their parts as class fields or in their constructor. */
  constructor() {
    // eslint-disable-next-line no-constructor-return
    return new Proxy(this, routing);
  }

  /** The computation; subclasses override it. Call modules through {@link call}. */
  forward(..._args: any[]): any {
    throw new KilnError('forward', `Module [${this._getName()}] is missing the required "forward" function`);
  }

  /** Runs forward with its hooks (PyTorch's `module(x)`). */
  call(...args: Parameters<this['forward']>): ReturnType<this['forward']> {
    const target = moving.get(this);
    if (target !== undefined) {
      // Half its tensors would be on the old device and half on the new one.
      throw new KilnError('Module.call', `${this._getName()} is being moved to '${target}' by to(), which has not finished: await model.to('${target}') before calling it`);
    }
    let a: unknown[] = args;
    for (const hook of [...this._forwardPreHooks.values()]) {
      const r = hook(this, a);
      if (r !== undefined) a = Array.isArray(r) ? r : [r];
    }
    let out: unknown = this.forward(...a);
    for (const hook of [...this._forwardHooks.values()]) {
      const r = hook(this, a, out);
      if (r !== undefined) out = r;
    }
    return out as ReturnType<this['forward']>;
  }

  // ---------------------------------------------------------------- registration

  /** Registers a parameter (or null, reserving the name) under `name`. */
  registerParameter(name: string, param: Tensor | null): void {
    checkName(this, 'Parameter', name);
    if (param !== null && !isParameter(param)) {
      throw new KilnError('registerParameter', `cannot assign '${typeName(param)}' object to parameter '${name}' (a Parameter or null required; wrap it with parameter(t))`);
    }
    Reflect.deleteProperty(this, name);
    this._parameters.set(name, param);
  }

  /**
   * Registers a buffer: state that is not a parameter (running_mean, ...).
   * Persistent buffers are part of stateDict().
   */
  registerBuffer(name: string, tensor: Tensor | null, opts: { persistent?: boolean } = {}): void {
    checkName(this, 'Buffer', name);
    if (tensor !== null && !isTensor(tensor)) throw new KilnError('registerBuffer', `cannot assign '${typeName(tensor)}' object to buffer '${name}' (a Tensor or null required)`);
    Reflect.deleteProperty(this, name);
    this._buffers.set(name, tensor);
    if (opts.persistent === false) this._nonPersistentBuffers.add(name);
    else this._nonPersistentBuffers.delete(name);
  }

  /** Registers a child module (or null) under `name`. */
  registerModule(name: string, module: Module | null): void {
    checkName(this, 'Module', name);
    if (module !== null && !(module instanceof Module)) throw new KilnError('registerModule', `${typeName(module)} is not a Module subclass`);
    Reflect.deleteProperty(this, name);
    this._modules.set(name, module);
  }

  /** Alias of {@link registerModule} (PyTorch's add_module). */
  addModule(name: string, module: Module | null): void {
    this.registerModule(name, module);
  }

  /** The submodule at a dotted path, e.g. `'layer1.0.conv1'` ('' is this module). */
  getSubmodule(target: string): Module {
    if (target === '') return this;
    let m: Module = this;
    for (const part of target.split('.')) {
      const next = m._modules.get(part);
      if (!next) throw new KilnError('getSubmodule', `${m._getName()} has no attribute \`${part}\` (looking up '${target}')`);
      m = next;
    }
    return m;
  }

  // ---------------------------------------------------------------- traversal

  /** Direct children with their names. */
  namedChildren(): [string, Module][] {
    const seen = new Set<Module>();
    const out: [string, Module][] = [];
    for (const [name, m] of this._modules) {
      if (m && !seen.has(m)) {
        seen.add(m);
        out.push([name, m]);
      }
    }
    return out;
  }

  /** Direct children. */
  children(): Module[] {
    return this.namedChildren().map(([, m]) => m);
  }

  /** This module and every descendant (depth first), with dotted names; '' is this module. */
  namedModules(opts: { prefix?: string; removeDuplicate?: boolean } = {}): [string, Module][] {
    const out: [string, Module][] = [];
    const memo = new Set<Module>();
    const removeDuplicate = opts.removeDuplicate ?? true;
    const visit = (m: Module, prefix: string) => {
      if (removeDuplicate) {
        if (memo.has(m)) return;
        memo.add(m);
      }
      out.push([prefix, m]);
      for (const [name, child] of m._modules) if (child) visit(child, prefix ? `${prefix}.${name}` : name);
    };
    visit(this, opts.prefix ?? '');
    return out;
  }

  /** This module and every descendant. */
  modules(): Module[] {
    return this.namedModules().map(([, m]) => m);
  }

  private namedMembers(kind: '_parameters' | '_buffers', prefix: string, recurse: boolean): [string, Tensor][] {
    const seen = new Set<Tensor>();
    const out: [string, Tensor][] = [];
    const mods: [string, Module][] = recurse ? this.namedModules({ prefix }) : [[prefix, this]];
    for (const [p, m] of mods) {
      for (const [name, t] of m[kind]) {
        if (!t || seen.has(t)) continue;
        seen.add(t);
        out.push([p ? `${p}.${name}` : name, t]);
      }
    }
    return out;
  }

  /** Parameters with dotted names (`layer1.0.conv1.weight`), each shared parameter once. */
  namedParameters(opts: { prefix?: string; recurse?: boolean } = {}): [string, Tensor][] {
    return this.namedMembers('_parameters', opts.prefix ?? '', opts.recurse ?? true);
  }

  /** Every parameter (what an optimizer takes). */
  parameters(recurse = true): Tensor[] {
    return this.namedParameters({ recurse }).map(([, t]) => t);
  }

  /** Buffers with dotted names (`bn1.running_mean`). */
  namedBuffers(opts: { prefix?: string; recurse?: boolean } = {}): [string, Tensor][] {
    return this.namedMembers('_buffers', opts.prefix ?? '', opts.recurse ?? true);
  }

  /** Every buffer. */
  buffers(recurse = true): Tensor[] {
    return this.namedBuffers({ recurse }).map(([, t]) => t);
  }

  // ---------------------------------------------------------------- modes

  /** Sets training mode on this module and every descendant; returns this. */
  train(mode = true): this {
    if (typeof mode !== 'boolean') throw new KilnError('train', `training mode is expected to be boolean, got ${typeof mode}`);
    this.training = mode;
    for (const child of this.children()) child.train(mode);
    return this;
  }

  /** Evaluation mode (train(false)); returns this. */
  eval(): this {
    return this.train(false);
  }

  /** Sets requiresGrad on every parameter: `requiresGrad_(false)` freezes the module. */
  requiresGrad_(requiresGrad = true): this {
    for (const p of this.parameters()) p.requiresGrad_(requiresGrad);
    return this;
  }

  /** Calls `fn` on every descendant (children first) and then on this module; returns this. */
  apply(fn: (m: Module) => void): this {
    for (const child of this.children()) child.apply(fn);
    fn(this);
    return this;
  }

  /**
   * Clears the parameters' gradients: disposes and sets them to null
   * (default), or zeroes them in place with `setToNone: false`.
   */
  zeroGrad(opts: { setToNone?: boolean } = {}): void {
    zeroGrads(this.parameters(), opts.setToNone ?? true);
  }

  /**
   * Frees every parameter, gradient and buffer of this module and its
   * children now (as tf.js's model.dispose()): GPU memory returns to the
   * pool at once instead of when the garbage collector finds the tensors.
   * The module is unusable afterwards.
   */
  dispose(): void {
    for (const m of this.modules()) {
      for (const p of m._parameters.values()) {
        p?.grad?.dispose();
        p?.dispose();
      }
      for (const b of m._buffers.values()) b?.dispose();
      releaseDerived(m);
    }
  }

  /**
   * The tensor forward uses for member `name`: a parameter or buffer as it
   * is, or, for a name a forward pre-hook derives (pruning's `weight =
   * weight_orig * weight_mask`), its current value, computed now if its
   * sources changed since it was last derived and cached otherwise (the
   * module owns it). Fast paths that skip `call()` (BatchNorm folding, ONNX
   * export) read weights through this, so hooks take effect on every path.
   * Null when `name` is neither a member nor a tensor attribute.
   */
  effectiveTensor(name: string): Tensor | null {
    return effectiveTensorOf(this, name);
  }

  // ---------------------------------------------------------------- hooks

  /** Registers `hook(module, args)` to run before forward; returning an array replaces the arguments. */
  registerForwardPreHook(hook: ForwardPreHook<this>): RemovableHandle {
    return addHook(this._forwardPreHooks, hook);
  }

  /** Registers `hook(module, args, output)` to run after forward; returning a value replaces the output. */
  registerForwardHook(hook: ForwardHook<this>): RemovableHandle {
    return addHook(this._forwardHooks, hook);
  }

  // ---------------------------------------------------------------- state

  /**
   * Parameters and persistent buffers under PyTorch's dotted keys, in
   * PyTorch's order. Values are detached tensors sharing storage with the
   * module's (dispose them when done), or the members themselves with `keepVars`.
   */
  stateDict(opts: StateDictOptions = {}): StateDict {
    return stateDictOf(this, opts);
  }

  /**
   * Copies `stateDict` into this module's parameters and buffers. With
   * `strict` (default) any missing or unexpected key is an error; a shape
   * mismatch always is. The error lists every problem at once.
   */
  loadStateDict(stateDict: StateDict | Map<string, Tensor>, opts: { strict?: boolean } = {}): LoadResult {
    return loadStateDictInto(this, stateDict, opts.strict ?? true);
  }

  /**
   * @internal Copies this module's own entries from `sd` (keys `prefix + name`);
   * the hook layers override to read extra state (PyTorch's _load_from_state_dict).
   */
  _loadFromStateDict(sd: Map<string, Tensor>, prefix: string, missing: string[], unexpected: string[], errors: string[]): void {
    loadOwnEntries(this, sd, prefix, missing, unexpected, errors);
  }

  // ---------------------------------------------------------------- devices

  /** Casts floating parameters and buffers to float16 in place (torch's Module.half()); returns this. */
  half(): this {
    castFloatingTensors(this, 'float16');
    return this;
  }

  /** Casts floating parameters and buffers to float32 in place (torch's Module.float()); returns this. */
  float(): this {
    castFloatingTensors(this, 'float32');
    return this;
  }

  /**
   * Moves every parameter and buffer to `device` ('cpu', 'webgpu') in
   * place, as PyTorch: each tensor object stays the same (optimizers built
   * before the move keep working). Gradients move with their parameters.
   * Await it before using the model: until it settles, `call()` on the
   * module or any submodule throws a KilnError, and so does another `to()`.
   */
  async to(device: string): Promise<this> {
    // Tensors keep their identity (set_ swaps in the moved storage), so an
    // optimizer built before the move still holds the model's parameters.
    const move = async (t: Tensor) => {
      const moved = await t.toDevice(device);
      t.set_(moved);
      moved.dispose();
    };
    const modules = [...this.modules()];
    const busy = modules.find((m) => moving.has(m));
    if (busy) throw new KilnError('Module.to', `${busy._getName()} is already being moved to '${moving.get(busy)}': await that to() before starting another`);
    // Until every tensor has moved, call() on this module or any submodule throws.
    for (const m of modules) moving.set(m, device);
    try {
      for (const m of modules) {
        for (const p of m._parameters.values()) {
          if (!p || p.device === device) continue;
          await move(p);
          if (p.grad) await move(p.grad);
        }
        for (const b of m._buffers.values()) if (b && b.device !== device) await move(b);
      }
    } finally {
      for (const m of modules) moving.delete(m);
    }
    return this;
  }

  /** Moves the module to the cpu backend. */
  cpu(): Promise<this> {
    return this.to('cpu');
  }

  // ---------------------------------------------------------------- printing

  /** The class name shown by toString(). */
  _getName(): string {
    return this.constructor.name;
  }

  /** The one-line description inside this module's parentheses (PyTorch's extra_repr). */
  extraRepr(): string {
    return '';
  }

  /** PyTorch's module print: `Net(\n  (conv): Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1))\n)`. */
  toString(): string {
    const extra = this.extraRepr();
    const extraLines = extra ? extra.split('\n') : [];
    const childLines = [...this._modules].map(([key, m]) => `(${key}): ${addIndent(m ? m.toString() : 'None', 2)}`);
    const lines = [...extraLines, ...childLines];
    let s = `${this._getName()}(`;
    if (lines.length) s += extraLines.length === 1 && childLines.length === 0 ? extraLines[0] : `\n  ${lines.join('\n  ')}\n`;
    return `${s})`;
  }
}

function addHook<H>(map: Map<number, H>, hook: H): RemovableHandle {
  const id = nextHookId++;
  map.set(id, hook);
  return { id, remove: () => void map.delete(id) };
}

/** Disposes and clears (or zeroes in place) the gradients of `params`. */
export function zeroGrads(params: Iterable<Tensor>, setToNone: boolean): void {
  for (const p of params) {
    const g = p.grad;
    if (!g) continue;
    if (setToNone) {
      p.grad = null;
      g.dispose();
    } else {
      g.detach_();
      g.zero_();
    }
  }
}
