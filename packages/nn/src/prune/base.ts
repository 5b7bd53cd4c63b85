// torch.nn.utils.prune.BasePruningMethod and PruningContainer: a pruning
// method is the forward pre-hook that sets `module[name] = name_mask *
// name_orig`, and re-pruning a tensor composes methods in a container.
import { KilnError, noGrad, onesLike, tidy, type Tensor } from '@kiln/core';
import type { Module } from '../module.js';
import { isParameter } from '../parameter.js';
import { derivationOf, derivingPreHook, releaseDerived, type TensorDerivation } from '../effective-tensor.js';
import { fromHost, gatherChannels, nonzeroChannels, scatterChannels, toHost, type HostArray } from './host.js';

/** What a pruning method removes: single entries, whole slices along a dim, or entries of several tensors at once. */
export type PruningType = 'unstructured' | 'structured' | 'global';

/** A pruning-method class, as `globalUnstructured` and `apply` take it (PyTorch passes the class too). */
export interface PruningMethodClass<M extends BasePruningMethod = BasePruningMethod, O = any> {
  /** Builds an unapplied method from its options. */
  new (options: O): M;
  /** The kind of method, e.g. 'unstructured' (PyTorch's PRUNING_TYPE). */
  readonly PRUNING_TYPE: PruningType;
}

/** Options every pruning function takes besides the method's own. */
export interface ImportanceOptions {
  /** Scores of the tensor's entries (its shape); the lowest are pruned. Default: the tensor itself (its current masked value). */
  importanceScores?: Tensor | null;
}

/**
 * A way to prune a tensor (torch.nn.utils.prune.BasePruningMethod). Subclass
 * it with a static `PRUNING_TYPE` and a `computeMask`, then prune with
 * `MyMethod.apply(module, 'weight', options)`. An applied method is the
 * module's forward pre-hook that derives `weight` from `weight_orig` and
 * `weight_mask` (a {@link TensorDerivation}, so fused paths see it too).
 */
export abstract class BasePruningMethod implements TensorDerivation {
  /** The kind of method (PyTorch's PRUNING_TYPE). */
  static readonly PRUNING_TYPE: PruningType = 'unstructured';
  /** The pruned member's name (PyTorch's _tensor_name); set when applied. */
  tensorName = '';

  /** This method's PRUNING_TYPE. */
  get pruningType(): PruningType {
    return (this.constructor as unknown as { PRUNING_TYPE: PruningType }).PRUNING_TYPE;
  }

  /** The method's name in error messages: its class name. */
  get methodName(): string {
    return this.constructor.name;
  }

  /**
   * The new mask of `t` (importance scores, already restricted to what this
   * method may prune when it is composed) given the current `defaultMask`.
   */
  abstract computeMask(t: Tensor, defaultMask: Tensor): Tensor | Promise<Tensor>;

  /** @internal The host form the built-in methods implement; the container composes through it without uploads. */
  _computeMaskHost?(t: HostArray, defaultMask: HostArray): Float32Array;

  /** @internal Reads back what _computeMaskHost needs besides its arguments (CustomFromMask's mask). */
  _prepare?(): Promise<void>;

  /** `module[name_mask] * module[name_orig]`: the value forward uses (PyTorch's apply_mask). */
  applyMask(module: Module): Tensor {
    const members = module as unknown as Record<string, Tensor>;
    const orig = members[`${this.tensorName}_orig`];
    const mask = members[`${this.tensorName}_mask`];
    if (!orig || !mask) throw new KilnError('prune', `${module._getName()} has no ${this.tensorName}_orig / ${this.tensorName}_mask: was ${this.tensorName} pruned?`);
    return mask.dtype === orig.dtype ? mask.mul(orig) : tidy(() => mask.to(orig.dtype).mul(orig));
  }

  /** @internal TensorDerivation: the masked tensor. */
  derive(module: Module): Tensor {
    return this.applyMask(module);
  }

  /** @internal TensorDerivation: the derived value depends on name_orig and name_mask. */
  sources(module: Module): (Tensor | null)[] {
    const members = module as unknown as Record<string, Tensor | undefined>;
    return [members[`${this.tensorName}_orig`] ?? null, members[`${this.tensorName}_mask`] ?? null];
  }

  /**
   * Prunes `module[name]` with a new method built from `options`, composing
   * with earlier pruning of the same tensor; returns the method now on the
   * module (a {@link PruningContainer} after the first). Asynchronous: the
   * importance scores are read back to choose what to prune.
   */
  static async apply<M extends BasePruningMethod, O>(this: PruningMethodClass<M, O>, module: Module, name: string, options: O & ImportanceOptions): Promise<BasePruningMethod> {
    return applyPruning(module, name, new this(options), options?.importanceScores ?? null);
  }

  /**
   * Makes the pruning permanent (PyTorch's BasePruningMethod.remove): `name`
   * becomes a Parameter again — the very `name_orig` object, holding the
   * masked values — and `name_orig`, `name_mask` and the hook are deleted.
   */
  remove(module: Module): void {
    const weight = noGrad(() => this.applyMask(module));
    releaseDerived(module, this.tensorName);
    Reflect.deleteProperty(module, this.tensorName);
    const orig = module._parameters.get(`${this.tensorName}_orig`)!;
    noGrad(() => orig.copy_(weight));
    weight.dispose();
    module._parameters.delete(`${this.tensorName}_orig`);
    module._buffers.get(`${this.tensorName}_mask`)?.dispose();
    module._buffers.delete(`${this.tensorName}_mask`);
    module.registerParameter(this.tensorName, orig);
  }
}

/**
 * Successive pruning of one tensor (torch.nn.utils.prune.PruningContainer):
 * each new method prunes only what is still unpruned — unstructured methods
 * take their amount of the remaining entries, structured methods skip the
 * slices already all zero — so masks only shrink.
 */
export class PruningContainer extends BasePruningMethod {
  /** The methods applied so far, oldest first. */
  readonly methods: BasePruningMethod[] = [];

  /** A container holding `methods`, added in order as by {@link PruningContainer.addPruningMethod}. */
  constructor(...methods: BasePruningMethod[]) {
    super();
    for (const m of methods) this.addPruningMethod(m);
  }

  /** The kind of the last method added (what the next computeMask combines as). */
  override get pruningType(): PruningType {
    return this.methods.at(-1)?.pruningType ?? 'unstructured';
  }

  /** Appends a method (PyTorch's add_pruning_method); all must prune the same tensor. */
  addPruningMethod(method: BasePruningMethod): void {
    if (!(method instanceof BasePruningMethod)) throw new KilnError('PruningContainer', `${String(method)} is not a BasePruningMethod subclass`);
    if (this.tensorName === '') this.tensorName = method.tensorName;
    else if (method.tensorName !== this.tensorName) {
      throw new KilnError('PruningContainer', `can only add pruning methods acting on the parameter named '${this.tensorName}' to PruningContainer ${this.methodName}; found '${method.tensorName}'`);
    }
    this.methods.push(method);
  }

  /** The last method's mask of what `defaultMask` leaves unpruned, combined with `defaultMask` (PyTorch's _combine_masks). */
  override async computeMask(t: Tensor, defaultMask: Tensor): Promise<Tensor> {
    const method = this.methods.at(-1);
    if (!method) throw new KilnError('PruningContainer', 'no pruning method to compute a mask with');
    const [scores, mask] = await Promise.all([toHost(t, method.methodName), toHost(defaultMask, method.methodName)]);
    const next = await combineMasks(method, scores, mask, t);
    return fromHost({ data: next, shape: t.shape }, defaultMask);
  }
}

/**
 * @internal Runs `method` on the part of `t` that `mask` still allows, and
 * writes its result into a copy of `mask` (PyTorch's _combine_masks); `like`
 * gives dtype and device when a custom method needs tensors.
 */
export async function combineMasks(method: BasePruningMethod, t: HostArray, mask: HostArray, like: Tensor): Promise<Float32Array> {
  const out = { data: mask.data.slice(), shape: mask.shape };
  const run = async (part: HostArray, partMask: HostArray): Promise<Float32Array> => {
    if (method._computeMaskHost) {
      await method._prepare?.();
      return method._computeMaskHost(part, partMask);
    }
    const [pt, pm] = [fromHost(part, like), fromHost(partMask, like)];
    try {
      const m = await method.computeMask(pt, pm);
      const h = await toHost(m, method.methodName);
      if (m !== pm) m.dispose();
      return h.data;
    } finally {
      pt.dispose();
      pm.dispose();
    }
  };
  if (method.pruningType === 'unstructured') {
    // Plain loops: typed-array from()/forEach with callbacks are ~10x slower on ResNet18's 11M weights.
    let kept = 0;
    for (let i = 0; i < mask.data.length; i++) if (mask.data[i] === 1) kept++;
    const idx = new Int32Array(kept);
    const part = new Float32Array(kept);
    for (let i = 0, j = 0; i < mask.data.length; i++) {
      if (mask.data[i] === 1) {
        idx[j] = i;
        part[j++] = t.data[i]!;
      }
    }
    const got = await run({ data: part, shape: [kept] }, { data: new Float32Array(kept).fill(1), shape: [kept] });
    for (let j = 0; j < kept; j++) out.data[idx[j]!] = got[j]!;
  } else if (method.pruningType === 'structured') {
    const dimOf = (method as unknown as { dim?: number }).dim;
    if (dimOf === undefined) throw new KilnError('PruningContainer', `pruning method ${method.methodName} of type 'structured' has no dim`);
    const dim = dimOf < 0 ? t.shape.length + dimOf : dimOf;
    if (dim < 0 || dim >= t.shape.length) throw new KilnError('PruningContainer', `Index is out of bounds for tensor of dimension ${t.shape.length}`);
    const channels = nonzeroChannels(mask, dim).flatMap((keep, c) => (keep ? [c] : []));
    const got = await run(gatherChannels(t, dim, channels), gatherChannels(mask, dim, channels));
    scatterChannels(out, dim, channels, got);
  } else {
    out.data.set(await run(t, mask));
  }
  return out.data;
}

/** The pruning method installed on `module` for `name`, with its hook id. */
export function pruningHookOf(module: Module, name: string): { id: number; method: BasePruningMethod } | null {
  for (const [id, hook] of module._forwardPreHooks) {
    const d = derivationOf(hook);
    if (d instanceof BasePruningMethod && d.tensorName === name) return { id, method: d };
  }
  return null;
}

/** BasePruningMethod.apply: compose with earlier pruning, compute the mask, then install orig, mask and hook. */
export async function applyPruning(module: Module, name: string, method: BasePruningMethod, importanceScores: Tensor | null): Promise<BasePruningMethod> {
  method.tensorName = name;
  const old = pruningHookOf(module, name);
  if (!old && !isParameter(module._parameters.get(name) ?? null)) {
    throw new KilnError(method.methodName, `${module._getName()} has no parameter '${name}' to prune (parameters: ${[...module._parameters.keys()].join(', ') || 'none'})`);
  }
  let composite: BasePruningMethod = method;
  if (old) {
    if (old.method instanceof PruningContainer) {
      old.method.addPruningMethod(method);
      composite = old.method;
    } else composite = new PruningContainer(old.method, method);
  }
  const orig = noGrad(() => module.effectiveTensor(name)!);
  const scores = importanceScores ?? orig;
  if (scores.shape.join() !== orig.shape.join()) {
    throw new KilnError(method.methodName, `importance_scores should have the same shape as parameter ${name} of ${module._getName()}: [${orig.shape.join(', ')}], got [${scores.shape.join(', ')}]`);
  }
  const defaultMask = old ? (module as unknown as Record<string, Tensor>)[`${name}_mask`]! : onesLike(orig);
  let mask: Tensor;
  try {
    mask = await composite.computeMask(scores, defaultMask);
  } catch (e) {
    if (old?.method instanceof PruningContainer && composite === old.method) old.method.methods.pop();
    throw e;
  } finally {
    if (!old) defaultMask.dispose();
  }
  if (old) {
    module._forwardPreHooks.delete(old.id);
    const previous = module._buffers.get(`${name}_mask`);
    module.registerBuffer(`${name}_mask`, mask);
    if (previous && previous !== mask) previous.dispose();
  } else {
    const param = module._parameters.get(name)!;
    module.registerParameter(`${name}_orig`, param);
    module._parameters.delete(name);
    module.registerBuffer(`${name}_mask`, mask);
  }
  module.registerForwardPreHook(derivingPreHook(composite));
  noGrad(() => module.effectiveTensor(name));
  return composite;
}
