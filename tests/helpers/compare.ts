// Element-wise comparison of computed values against reference values, with
// a failure message that shows where and by how much they differ (a plain
// toEqual on thousands of floats says neither).

/** |actual - expected| <= atol + rtol * |expected|, as torch.allclose. */
export interface Tolerance {
  rtol: number;
  atol: number;
}

/** Exact equality: for integer and boolean results. */
export const EXACT: Tolerance = { rtol: 0, atol: 0 };

type Numeric = ArrayLike<number>;

function close(a: number, e: number, tol: Tolerance): boolean {
  if (Number.isNaN(e)) return Number.isNaN(a);
  if (!Number.isFinite(e)) return a === e;
  return Math.abs(a - e) <= tol.atol + tol.rtol * Math.abs(e);
}

/**
 * Null when every element is within tolerance, else a description of the
 * mismatches: how many, and the worst one with its index and both values.
 */
export function mismatch(actual: Numeric, expected: Numeric, tol: Tolerance): string | null {
  if (actual.length !== expected.length) return `length ${actual.length}, expected ${expected.length}`;
  let bad = 0;
  let worst = -1;
  let worstErr = -1;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (close(a, e, tol)) continue;
    bad++;
    const err = Number.isFinite(a - e) ? Math.abs(a - e) / (tol.atol + tol.rtol * Math.abs(e) || 1) : Infinity;
    if (err > worstErr) [worst, worstErr] = [i, err];
  }
  if (bad === 0) return null;
  return `${bad}/${expected.length} elements differ (rtol ${tol.rtol}, atol ${tol.atol}); ` +
    `worst at flat index ${worst}: got ${actual[worst]}, expected ${expected[worst]}`;
}

/** Throws with {@link mismatch}'s description when values differ. */
export function expectClose(actual: Numeric, expected: Numeric, tol: Tolerance, what = 'values'): void {
  const problem = mismatch(actual, expected, tol);
  if (problem) throw new Error(`${what}: ${problem}`);
}
