// Locates the files tests/reference/gen_resnet_io.py writes, and decides
// what a test does when they are absent or stale: skip with a message saying
// how to make them, or fail when KILN_REQUIRE_REFERENCE=1 (CI must not go
// green by skipping).
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeWhenReady } from '@kiln/test-helpers';
import { REFERENCE_CACHE_DIR, referenceProblem } from '../../../../scripts/reference-cache.mjs';

/**
 * `<reference dir>/resnet_io`, where the generator writes. KILN_REFERENCE_DIR
 * points elsewhere than the shared cache (tests/.cache/reference).
 */
export const REF_DIR = join(process.env.KILN_REFERENCE_DIR ?? REFERENCE_CACHE_DIR, 'resnet_io');

const HOW = 'run `node scripts/setup.mjs --references` (KILN_REFERENCE_DIR, when set, must hold resnet_io/ and the resnet_io.hash setup writes beside it)';

/**
 * Why the reference files cannot be used, or null. Wherever they are (the
 * shared cache or KILN_REFERENCE_DIR), they are checked for staleness: the
 * directory's resnet_io.hash must match the generator.
 */
function problem(): string | null {
  const missing = ['weights/expected.json', 'images/index.json', 'hostile/index.json'].filter((f) => !existsSync(join(REF_DIR, f)));
  if (missing.length) return `no reference files in ${REF_DIR}`;
  return referenceProblem('resnet_io', process.env.KILN_REFERENCE_DIR ?? REFERENCE_CACHE_DIR);
}

const PROBLEM = problem();

/** True when the generator's output is present and current. */
export const HAS_REFERENCE = PROBLEM === null;

/** `describe` for suites that need the reference files (the shared skip-or-fail rule). */
export function describeWithReference(name: string, body: () => void): void {
  // The body is only run when the files are there: it reads them at collection time.
  describeWhenReady(name, PROBLEM === null ? null : `${PROBLEM}; ${HOW}`, body);
}

/** Bytes of a reference file (`sub` relative to REF_DIR). */
export function refBytes(sub: string): Uint8Array {
  return new Uint8Array(readFileSync(join(REF_DIR, sub)));
}

/** Parsed JSON of a reference file. */
export function refJson<T>(sub: string): T {
  return JSON.parse(readFileSync(join(REF_DIR, sub), 'utf8')) as T;
}

/** sha256 hex of a typed array's bytes, to compare with the generator's hashes. */
export function sha256(data: ArrayBufferView): string {
  return createHash('sha256').update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength)).digest('hex');
}

/** One tensor as the generator describes it (see expected_record in gen_resnet_io.py). */
export interface ExpectedTensor {
  shape: number[];
  dtype: string;
  sha256: string;
  sha256Widened?: string;
  head?: number[];
  sum?: number;
}
