// The sparsity report PyTorch's pruning tutorial prints: the fraction of
// zeros per tensor (as forward uses it) and over all of them.
import { noGrad, type Tensor } from '@kiln/core';
import type { Module } from '../module.js';
import { pruningHookOf } from './base.js';

/** Zeros of one tensor. */
export interface TensorSparsity {
  /** Dotted name as in the state dict of the unpruned model, e.g. `layer1.0.conv1.weight`. */
  name: string;
  /** Elements of the tensor. */
  numel: number;
  /** Elements equal to 0. */
  zeros: number;
  /** zeros / numel (0 for an empty tensor). */
  fraction: number;
}

/** Zeros over every tensor of a {@link SparsityReport} together. */
export interface GlobalSparsity {
  /** Elements of all the tensors. */
  numel: number;
  /** Those equal to 0. */
  zeros: number;
  /** zeros / numel (0 when there are no elements). */
  fraction: number;
}

/** What {@link sparsity} returns; `toString()` gives the tutorial's lines. */
export interface SparsityReport {
  /** One entry per tensor, in module order. */
  tensors: TensorSparsity[];
  /** Over every tensor of the report together. */
  global: GlobalSparsity;
  /** `Sparsity in conv1.weight: 20.00%` per tensor, then `Global sparsity: 20.00%`. */
  toString(): string;
}

/** The tensors a report covers by default: every pruned tensor and every parameter of 2 or more dims (conv and linear weights). */
function defaultTensors(model: Module): [string, Module, string][] {
  const out: [string, Module, string][] = [];
  for (const [prefix, m] of model.namedModules()) {
    const names = new Set<string>();
    for (const [k, p] of m._parameters) {
      if (!p) continue;
      const base = k.endsWith('_orig') ? k.slice(0, -5) : k;
      if (base !== k && pruningHookOf(m, base)) names.add(base);
      else if (p.dim() >= 2) names.add(k);
    }
    for (const n of names) out.push([prefix ? `${prefix}.${n}` : n, m, n]);
  }
  return out;
}

/**
 * Fractions of zeros in the tensors forward uses (a pruned tensor's masked
 * value): per tensor and over all of them. Covers `parameters` when given
 * (as globalUnstructured takes them), otherwise every pruned tensor and
 * every conv/linear weight of `model`.
 *
 * ```ts
 * console.log(String(await prune.sparsity(model)));   // Sparsity in conv1.weight: 20.00% ... Global sparsity: 20.00%
 * ```
 */
export async function sparsity(model: Module, parameters?: readonly (readonly [Module, string])[]): Promise<SparsityReport> {
  const names = new Map<Module, string>(model.namedModules().map(([n, m]) => [m, n]));
  const list = parameters
    ? parameters.map(([m, n]) => [names.has(m) && names.get(m) !== '' ? `${names.get(m)}.${n}` : n, m, n] as [string, Module, string])
    : defaultTensors(model);
  const tensors: TensorSparsity[] = [];
  for (const [name, m, n] of list) {
    const t: Tensor | null = noGrad(() => m.effectiveTensor(n));
    if (!t) continue;
    const v = await t.toArray();
    let zeros = 0;
    for (let i = 0; i < v.length; i++) if (v[i] === 0) zeros++;
    tensors.push({ name, numel: v.length, zeros, fraction: v.length ? zeros / v.length : 0 });
  }
  const numel = tensors.reduce((s, t) => s + t.numel, 0);
  const zeros = tensors.reduce((s, t) => s + t.zeros, 0);
  const global = { numel, zeros, fraction: numel ? zeros / numel : 0 };
  const pct = (f: number) => `${(100 * f).toFixed(2)}%`;
  return {
    tensors,
    global,
    toString: () => [...tensors.map((t) => `Sparsity in ${t.name}: ${pct(t.fraction)}`), `Global sparsity: ${pct(global.fraction)}`].join('\n'),
  };
}
