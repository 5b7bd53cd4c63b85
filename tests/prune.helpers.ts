// Shared by tests/prune.*.test.ts: gen_prune.py's cases by name, with their
// tensors by name (the generator writes them as gen_resnet.py does). Not a
// test file itself.
import { fromArray, noGrad, rand, randn, type Tensor } from '@kiln/core';
import { BatchNorm2d, type Module } from '@kiln/nn';
import { describeWhenReady, loadReference, type ReferenceFile } from '@kiln/test-helpers';
import { referenceProblem } from '../scripts/reference-cache.mjs';

/** One gen_prune.py case: its arguments and its tensors by name. */
export interface PruneCase {
  name: string;
  args: Record<string, any>;
  has(name: string): boolean;
  values(name: string): Float32Array | Int32Array | Uint8Array;
  shape(name: string): number[];
  tensor(name: string, device: string): Tensor;
}

/** gen_prune.py's reference, cases by name. */
export interface PruneReference {
  cases: PruneCase[];
  case(name: string): PruneCase;
}

function wrap(ref: ReferenceFile): PruneReference {
  const cases = ref.cases.map((c): PruneCase => {
    const names = (c.args.outputNames as string[]) ?? [];
    const rec = (n: string) => {
      const i = names.indexOf(n);
      if (i < 0) throw new Error(`gen_prune.py case ${c.name} has no tensor '${n}'`);
      return c.outputs[i]!;
    };
    return {
      name: c.name,
      args: c.args,
      has: (n) => names.includes(n),
      values: (n) => ref.values(rec(n)) as Float32Array | Int32Array | Uint8Array,
      shape: (n) => rec(n).shape,
      tensor: (n, device) => fromArray(ref.values(rec(n)) as Float32Array, rec(n).shape, { device }),
    };
  });
  return {
    cases,
    case: (n) => {
      const c = cases.find((k) => k.name === n);
      if (!c) throw new Error(`gen_prune.py wrote no case '${n}'`);
      return c;
    },
  };
}

/**
 * `describe` over gen_prune.py's outputs (and those of the generator
 * `alsoNeeds` names: resnet_io holds the seed-0 ResNet18 .pth); skipped
 * with the reason, or failing under KILN_REQUIRE_REFERENCE=1, when missing or stale.
 */
export function describePruneReference(title: string, fn: (ref: PruneReference) => void, alsoNeeds?: string): void {
  const loaded = loadReference('prune');
  let problem = loaded.ok ? null : loaded.reason;
  if (!problem && alsoNeeds) problem = referenceProblem(alsoNeeds);
  describeWhenReady(title, problem, () => fn(wrap((loaded as { ok: true; ref: ReferenceFile }).ref)));
}

/** Values with -0 written as 0 (a masked entry is 0 * w). */
export function plain(a: ArrayLike<number>): number[] {
  return Array.from(a, (v) => v + 0);
}

/** The flat mask np.packbits wrote (most significant bit first), as 0/1 values. */
export function unpackBits(bytes: ArrayLike<number>, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (bytes[i >> 3]! >> (7 - (i & 7))) & 1;
  return out;
}

/** Every `step`-th element, as gen_resnet.py samples large tensors. */
export function strided(a: ArrayLike<number>, step: number): Float32Array {
  const out = new Float32Array(Math.ceil(a.length / step));
  for (let i = 0, j = 0; i < a.length; i += step, j++) out[j] = a[i]!;
  return out;
}

/**
 * Gives every BatchNorm2d of `model` seeded non-trivial statistics and affine
 * parameters (mean ~0.1·N(0,1), var and weight in [0.5, 1.5), bias ~0.1·N(0,1)),
 * so a BN fold or a channel shrink is not the identity. Uses the global generator.
 */
export function randomizeBatchNorm(model: Module): void {
  noGrad(() => {
    for (const m of model.modules()) {
      if (!(m instanceof BatchNorm2d)) continue;
      const c = m.numFeatures;
      for (const [t, v] of [[m.running_mean!, randn([c]).mul(0.1)], [m.running_var!, rand([c]).add(0.5)], [m.weight!, rand([c]).add(0.5)], [m.bias!, randn([c]).mul(0.1)]] as const) {
        t.copy_(v);
        v.dispose();
      }
    }
  });
}
