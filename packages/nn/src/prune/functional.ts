// torch.nn.utils.prune's functions in camelCase. Each pruning function
// returns a promise (it reads the importance scores back to choose what to
// prune); remove and isPruned are synchronous.
import { KilnError, noGrad, type Generator, type Tensor } from '@kiln/core';
import type { Module } from '../module.js';
import { derivationOf } from '../effective-tensor.js';
import { countToPrune, type PruneAmount } from './amount.js';
import { applyPruning, combineMasks, pruningHookOf, BasePruningMethod, type ImportanceOptions, type PruningMethodClass } from './base.js';
import { CustomFromMask, Identity, L1Unstructured, LnStructured, RandomStructured, RandomUnstructured } from './methods.js';
import { toHost } from './host.js';

/** The number of entries `amount` applies to, for the error message of a bad amount. */
function sizeOf(module: Module, name: string, dim?: number): number | undefined {
  const t = module._parameters.get(name) ?? module._parameters.get(`${name}_orig`);
  if (!t) return undefined;
  if (dim === undefined) return t.numel();
  const d = dim < 0 ? dim + t.dim() : dim;
  return t.shape[d];
}

/** Validates `amount` against the tensor's size before the method is built, so the error names the size. */
function checkAmount(method: string, module: Module, name: string, amount: PruneAmount, dim?: number): void {
  const size = sizeOf(module, name, dim);
  if (size !== undefined) countToPrune(method, amount, size);
}

/**
 * Prunes the `amount` entries of `module[name]` with the smallest |value|
 * (or smallest `importanceScores`), as `torch.nn.utils.prune.l1_unstructured`:
 * `name_orig` keeps the original Parameter, `name_mask` is a buffer and
 * `module[name]` becomes `name_mask * name_orig`, recomputed before each forward.
 *
 * ```ts
 * await prune.l1Unstructured(model.conv1, 'weight', 0.2);
 * ```
 * @returns the module.
 */
export async function l1Unstructured<M extends Module>(module: M, name: string, amount: PruneAmount, options: ImportanceOptions = {}): Promise<M> {
  checkAmount('L1Unstructured', module, name, amount);
  await L1Unstructured.apply(module, name, { amount, importanceScores: options.importanceScores });
  return module;
}

/** Prunes `amount` random entries of `module[name]` (torch.nn.utils.prune.random_unstructured), drawn from Kiln's seeded generator. */
export async function randomUnstructured<M extends Module>(module: M, name: string, amount: PruneAmount, options: { generator?: Generator } = {}): Promise<M> {
  checkAmount('RandomUnstructured', module, name, amount);
  await RandomUnstructured.apply(module, name, { amount, generator: options.generator });
  return module;
}

/**
 * Prunes the `amount` slices along `dim` of `module[name]` with the smallest
 * Ln norm (torch.nn.utils.prune.ln_structured); `n` is 1, 2, Infinity,
 * -Infinity (or any p > 0). `dim: 0` prunes a conv's output channels.
 */
export async function lnStructured<M extends Module>(module: M, name: string, amount: PruneAmount, n: number | 'fro', dim: number, options: ImportanceOptions = {}): Promise<M> {
  checkAmount('LnStructured', module, name, amount, dim);
  await LnStructured.apply(module, name, { amount, n, dim, importanceScores: options.importanceScores });
  return module;
}

/** Prunes `amount` random slices along `dim` of `module[name]` (torch.nn.utils.prune.random_structured). */
export async function randomStructured<M extends Module>(module: M, name: string, amount: PruneAmount, dim: number, options: { generator?: Generator } = {}): Promise<M> {
  checkAmount('RandomStructured', module, name, amount, dim);
  await RandomStructured.apply(module, name, { amount, dim, generator: options.generator });
  return module;
}

/** Prunes `module[name]` where `mask` is 0 (torch.nn.utils.prune.custom_from_mask); composes with an existing mask. */
export async function customFromMask<M extends Module>(module: M, name: string, mask: Tensor): Promise<M> {
  await CustomFromMask.apply(module, name, { mask });
  return module;
}

/**
 * Re-parametrises `module[name]` as `name_orig` and an all-ones `name_mask`
 * without pruning anything (torch.nn.utils.prune.identity): the model then
 * has the keys a pruned PyTorch model's state dict has, so it loads one.
 */
export async function identity<M extends Module>(module: M, name: string): Promise<M> {
  await Identity.apply(module, name, {});
  return module;
}

/** Options of {@link globalUnstructured}: the method's own (e.g. `amount`) and importance scores per tensor. */
export type GlobalOptions<O> = O & {
  /** Scores per module and tensor name; a tensor without scores is ranked by its own values. */
  importanceScores?: Map<Module, Record<string, Tensor>>;
};

/**
 * Prunes all of `parameters` together (torch.nn.utils.prune.global_unstructured):
 * their entries are ranked as one vector and `amount` of the still-unpruned
 * entries go, wherever they are; then each tensor is pruned with its slice of
 * the global mask (custom_from_mask). `method` is an unstructured pruning
 * class, e.g. `prune.L1Unstructured`.
 *
 * ```ts
 * const convs = model.modules().filter((m) => m instanceof Conv2d).map((m) => [m, 'weight'] as [Module, string]);
 * await prune.globalUnstructured(convs, prune.L1Unstructured, { amount: 0.2 });
 * ```
 */
export async function globalUnstructured<O>(parameters: readonly (readonly [Module, string])[], method: PruningMethodClass<BasePruningMethod, O>, options: GlobalOptions<O>): Promise<void> {
  if (!Array.isArray(parameters)) throw new KilnError('globalUnstructured', 'parameters is not an Iterable');
  if (method?.PRUNING_TYPE !== 'unstructured') {
    throw new KilnError('globalUnstructured', `Only "unstructured" PRUNING_TYPE supported for the \`pruning_method\`. Found method ${method?.name ?? String(method)} of type ${method?.PRUNING_TYPE}`);
  }
  const scores = options.importanceScores ?? new Map<Module, Record<string, Tensor>>();
  if (!(scores instanceof Map)) throw new KilnError('globalUnstructured', 'importanceScores must be a Map from module to { name: tensor }');
  const { importanceScores: _, ...methodOptions } = options;
  const instance = new method(methodOptions as O);
  const parts = await Promise.all(
    parameters.map(async ([m, name]) => {
      const value = noGrad(() => m.effectiveTensor(name));
      if (!value) throw new KilnError('globalUnstructured', `${m._getName()} has no tensor '${name}'`);
      const s = scores.get(m)?.[name] ?? value;
      if (s.shape.join() !== value.shape.join()) throw new KilnError('globalUnstructured', `importance scores of ${m._getName()}.${name} have shape [${s.shape.join(', ')}], the tensor [${value.shape.join(', ')}]`);
      const mask = (m as unknown as Record<string, Tensor | undefined>)[`${name}_mask`];
      const [hs, hm] = await Promise.all([toHost(s, 'globalUnstructured'), mask ? toHost(mask, 'globalUnstructured') : { data: new Float32Array(value.numel()).fill(1) }]);
      return { like: value, scores: hs.data, mask: hm.data };
    }),
  );
  const total = parts.reduce((n, p) => n + p.scores.length, 0);
  const allScores = new Float32Array(total);
  const allMask = new Float32Array(total);
  let at = 0;
  for (const p of parts) {
    allScores.set(p.scores, at);
    allMask.set(p.mask, at);
    at += p.scores.length;
  }
  const like = parts[0]?.like;
  if (!like) return;
  // PyTorch runs a PruningContainer on the flat vectors; composing on the host avoids uploading them.
  instance.tensorName = 'temp';
  const finalMask = await combineMasks(instance, { data: allScores, shape: [total] }, { data: allMask, shape: [total] }, like);
  at = 0;
  for (let i = 0; i < parameters.length; i++) {
    const [m, name] = parameters[i]!;
    const p = parts[i]!;
    // custom_from_mask with this tensor's slice of the global mask, handed over on the host.
    await applyPruning(m, name, new CustomFromMask({ hostMask: { data: finalMask.subarray(at, at + p.scores.length), shape: p.like.shape } }), null);
    at += p.scores.length;
  }
}

/**
 * Makes the pruning of `module[name]` permanent (torch.nn.utils.prune.remove):
 * `name` becomes a Parameter holding the masked values (the same object as
 * `name_orig`, so optimizers keep it) and `name_orig`, `name_mask` and the
 * forward pre-hook are deleted.
 * @throws KilnError when `name` is not pruned.
 */
export function remove<M extends Module>(module: M, name: string): M {
  const found = pruningHookOf(module, name);
  if (!found) throw new KilnError('prune.remove', `Parameter '${name}' of module ${module._getName()} has to be pruned before pruning can be removed`);
  found.method.remove(module);
  module._forwardPreHooks.delete(found.id);
  return module;
}

/** True when `module` or any submodule has a pruning pre-hook (torch.nn.utils.prune.is_pruned). */
export function isPruned(module: Module): boolean {
  return module.modules().some((m) => [...m._forwardPreHooks.values()].some((hook) => derivationOf(hook) instanceof BasePruningMethod));
}
