// Loads the PyTorch reference outputs written by tests/reference/gen_*.py
// (format documented in tests/reference/common.py). Missing or stale outputs
// skip the suite with one line saying how to get them, or fail it when
// KILN_REQUIRE_REFERENCE=1 (CI sets it, so a broken torch cannot pass as a skip).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'vitest';
import { REFERENCE_CACHE_DIR, referenceProblem } from '../../scripts/reference-cache.mjs';
import { warnOnce } from './env.js';

/** True when the environment demands reference outputs be present and current. */
export const referenceRequired = process.env.KILN_REQUIRE_REFERENCE === '1';

/** Kiln's dtype names, as the generators write them. */
export type RefDType = 'float32' | 'int32' | 'int8' | 'uint8' | 'bool';

/** One tensor as PyTorch produced it: inline values, or a range of the generator's .bin file. */
export interface TensorRecord {
  shape: number[];
  dtype: RefDType;
  data?: (number | 'NaN' | 'Infinity' | '-Infinity')[];
  bin?: { file: string; offset: number; length: number };
}

/** A view op applied to an input's base before the op under test. */
export interface ViewStep {
  op: 'transpose' | 'permute' | 'slice' | 'expand';
  args: unknown[];
}

/** An operand: its contiguous base, the views that make the actual operand, and whether its gradient is checked. */
export interface InputRecord extends TensorRecord {
  view?: ViewStep[];
  requiresGrad: boolean;
}

/** One op call and everything PyTorch computed for it. */
export interface RefCase {
  name: string;
  op: string;
  args: Record<string, unknown>;
  inputs: InputRecord[];
  outputs: TensorRecord[];
  /** The upstream gradient used for each output (null where the output is not differentiable). */
  gradOutputs: (TensorRecord | null)[];
  /** d(sum_i outputs[i] * gradOutputs[i]) / d(input base); null where the input needs no grad. */
  grads: (TensorRecord | null)[];
}

/** A call PyTorch rejects; Kiln must reject it with an error naming the op. */
export interface RefErrorCase {
  name: string;
  op: string;
  args: Record<string, unknown>;
  inputs: { shape: number[]; dtype: RefDType; view?: ViewStep[] }[];
  torchError: string;
}

/** One generator's whole output. */
export interface ReferenceFile {
  name: string;
  generator: string;
  torch: string;
  cases: RefCase[];
  errors: RefErrorCase[];
  /** Decodes a tensor record of this file into its flat host values. */
  values(rec: TensorRecord): Float32Array | Int32Array | Int8Array | Uint8Array;
}

/** Either the loaded reference, or why it cannot be used. */
export type ReferenceResult = { ok: true; ref: ReferenceFile } | { ok: false; reason: string };

const ARRAYS = { float32: Float32Array, int32: Int32Array, int8: Int8Array, uint8: Uint8Array, bool: Uint8Array };

/** Reads `tests/.cache/reference/<name>/<name>.json` (and its .bin), never throwing. */
export function loadReference(name: string): ReferenceResult {
  const problem = referenceProblem(name);
  if (problem) return { ok: false, reason: `${problem}; run \`npm test\` or \`node scripts/setup.mjs\` (needs PyTorch in /usr/bin/python3)` };
  const dir = join(REFERENCE_CACHE_DIR, name);
  const doc = JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8')) as Omit<ReferenceFile, 'values' | 'name'>;
  const bins = new Map<string, Buffer>();
  const values = (rec: TensorRecord) => {
    const Ctor = ARRAYS[rec.dtype];
    if (rec.bin) {
      let buf = bins.get(rec.bin.file);
      if (!buf) bins.set(rec.bin.file, (buf = readFileSync(join(dir, rec.bin.file))));
      // Copy out (Uint8Array.prototype.slice copies): a view into the shared file buffer could be mutated by a test.
      const start = rec.bin.offset;
      const bytes = buf.subarray(start, start + rec.bin.length * Ctor.BYTES_PER_ELEMENT).slice();
      return new Ctor(bytes.buffer, bytes.byteOffset, rec.bin.length);
    }
    const data = rec.data ?? [];
    const out = new Ctor(data.length);
    for (let i = 0; i < data.length; i++) {
      const v = data[i]!;
      out[i] = typeof v === 'string' ? Number(v) : v;
    }
    return out;
  };
  return { ok: true, ref: { ...doc, name, values } };
}

/**
 * The one rule for suites that need reference outputs: run `fn` as a suite
 * when `problem` is null; otherwise register it skipped with the reason
 * (printed once), or as one failing test when KILN_REQUIRE_REFERENCE=1.
 */
export function describeWhenReady(title: string, problem: string | null, fn: () => void): void {
  if (problem === null) describe(title, fn);
  else if (referenceRequired) it(`${title} (KILN_REQUIRE_REFERENCE=1)`, () => { throw new Error(problem); });
  else {
    warnOnce(`[kiln] ${title} skipped: ${problem}`);
    describe(title, () => it.skip(`skipped: ${problem}`, () => {}));
  }
}

/**
 * `describe` over a generator's reference outputs. When they are missing or
 * stale the suite is registered skipped, the reason in its title, or as one
 * failing test when KILN_REQUIRE_REFERENCE=1.
 */
export function describeReference(title: string, name: string, fn: (ref: ReferenceFile) => void): void {
  const loaded = loadReference(name);
  describeWhenReady(title, loaded.ok ? null : loaded.reason, () => fn((loaded as { ok: true; ref: ReferenceFile }).ref));
}
