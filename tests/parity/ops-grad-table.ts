// The ops table as the parity suites run it: every row of ops-table.ts with
// its gradient tolerance filled in. Free of vitest, so the browser harness
// (tests/browser/harness.ts) runs the very same table in a page.
import type { Table } from './table-case.js';
import { OPS, type OpSpec } from './ops-table.js';

/** Gradients chain a few more ops than the forward; by default they get 4x its tolerance. */
function withGradTolerance(spec: OpSpec): OpSpec {
  if (spec.gradTol) return spec;
  return { ...spec, gradTol: { rtol: Math.max(4 * spec.tol.rtol, 1e-6), atol: Math.max(4 * spec.tol.atol, 1e-6) } };
}

/** OPS with every gradient tolerance set. */
export const OPS_TABLE: Table = Object.fromEntries(Object.entries(OPS).map(([op, spec]) => [op, withGradTolerance(spec)]));
