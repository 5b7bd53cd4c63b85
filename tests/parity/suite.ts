// Registers one family's parity tests for tests/reference/gen_ops.py: every
// case of the family, on every backend, through the shared table runner
// (table-suite.ts), which also prints how many cases ran on each backend.
import { describeTableParity } from './table-suite.js';
import type { Table } from './table-case.js';
import { OPS, type Family, type OpSpec } from './ops-table.js';

/** Gradients chain a few more ops than the forward; by default they get 4x its tolerance. */
function withGradTolerance(spec: OpSpec): OpSpec {
  if (spec.gradTol) return spec;
  return { ...spec, gradTol: { rtol: Math.max(4 * spec.tol.rtol, 1e-6), atol: Math.max(4 * spec.tol.atol, 1e-6) } };
}

const TABLE: Table = Object.fromEntries(Object.entries(OPS).map(([op, spec]) => [op, withGradTolerance(spec)]));

/** Call at the top level of a test file (it awaits the WebGPU probe). */
export function describeParity(family: Family): Promise<void> {
  return describeTableParity(`parity ops/${family}`, 'ops', TABLE, (c) => OPS[c.op]?.family === family);
}
