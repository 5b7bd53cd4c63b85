// Shared by @kiln/resnet's model tests and tests/resnet.*.test.ts: where
// gen_resnet.py's reference outputs and gen_resnet_io.py's weights live,
// and small accessors over them. Not a test file itself.
import { join } from 'node:path';
import { fromArray, type Tensor } from '@kiln/core';
import { describeWhenReady, loadReference, type RefCase, type ReferenceFile } from '@kiln/test-helpers';
import { loadWeights, resnet18, type ResNet } from '@kiln/resnet';
import { REFERENCE_CACHE_DIR, referenceProblem } from '../../../scripts/reference-cache.mjs';

/** The seeded torchvision resnet18 gen_resnet_io.py saves with torch.save. */
export const RESNET18_PTH = join(REFERENCE_CACHE_DIR, 'resnet_io', 'weights', 'resnet18.pth');
/** BatchNorm tensors of the calibrated model (gen_resnet.py). */
export const BN_CALIBRATION = join(REFERENCE_CACHE_DIR, 'resnet', 'bn_calibration.safetensors');
/** gen_resnet_io.py's test images. */
export const IMAGES_DIR = join(REFERENCE_CACHE_DIR, 'resnet_io', 'images');

/** One gen_resnet.py case: its arguments and its tensors by name. */
export interface NamedCase {
  args: Record<string, any>;
  has(name: string): boolean;
  values(name: string): Float32Array | Int32Array;
  shape(name: string): number[];
}

function named(ref: ReferenceFile, c: RefCase): NamedCase {
  const names = (c.args.outputNames as string[]) ?? [];
  const rec = (name: string) => {
    const i = names.indexOf(name);
    if (i < 0) throw new Error(`reference case ${c.name} has no tensor '${name}'`);
    return c.outputs[i]!;
  };
  return {
    args: c.args,
    has: (name) => names.includes(name),
    values: (name) => ref.values(rec(name)) as Float32Array | Int32Array,
    shape: (name) => rec(name).shape,
  };
}

/** The reference of gen_resnet.py, with cases by name. */
export interface ResnetReference {
  case(name: string): NamedCase;
}

/**
 * `describe` over gen_resnet.py's outputs plus resnet_io's .pth; skipped
 * (or failing under KILN_REQUIRE_REFERENCE=1) with the reason when either is
 * missing or stale.
 */
export function describeResnetReference(title: string, fn: (ref: ResnetReference) => void): void {
  const loaded = loadReference('resnet');
  const problem = loaded.ok ? referenceProblem('resnet_io') : loaded.reason;
  describeWhenReady(title, problem, () => {
    const ref = (loaded as { ok: true; ref: ReferenceFile }).ref;
    fn({
      case: (name) => {
        const c = ref.cases.find((k) => k.name === name);
        if (!c) throw new Error(`gen_resnet.py wrote no case '${name}'`);
        return named(ref, c);
      },
    });
  });
}

/** The seeded resnet18 from its .pth with gen_resnet.py's BatchNorm calibration on top, in eval mode. */
export async function calibratedResnet18(device: string): Promise<ResNet> {
  const model = resnet18({ device });
  await loadWeights(model, RESNET18_PTH);
  const r = await loadWeights(model, BN_CALIBRATION, { strict: false });
  if (r.unexpectedKeys.length) throw new Error(`unexpected calibration keys ${r.unexpectedKeys.join(', ')}`);
  return model.eval();
}

/** A reference tensor as a Kiln tensor on `device`. */
export function refTensor(c: NamedCase, name: string, device: string): Tensor {
  return fromArray(c.values(name), c.shape(name), { device });
}

/** max |a - b|. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** max |x|. */
export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

/** Indices of the k largest values of each row of [rows, cols], PyTorch's topk order. */
export function topk(values: ArrayLike<number>, cols: number, k: number): number[][] {
  const out: number[][] = [];
  for (let r = 0; r < values.length / cols; r++) {
    const idx = Array.from({ length: cols }, (_, c) => c);
    idx.sort((a, b) => values[r * cols + b]! - values[r * cols + a]! || a - b);
    out.push(idx.slice(0, k));
  }
  return out;
}

/** Every `step`-th element, as gen_resnet.py samples large tensors. */
export function strided(a: ArrayLike<number>, step: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < a.length; i += step) out.push(a[i]!);
  return out;
}

/** Prints a measured difference for the report (vitest shows console output per test). */
export function report(what: string, diff: number): void {
  console.log(`[resnet parity] ${what}: max |diff| = ${diff.toExponential(2)}`);
}
