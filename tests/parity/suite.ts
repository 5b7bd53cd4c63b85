// Registers one family's parity tests for tests/reference/gen_ops.py: every
// case of the family, on every backend, through the shared table runner
// (table-suite.ts), which also prints how many cases ran on each backend.
import { describeTableParity } from './table-suite.js';
import { OPS_TABLE as TABLE } from './ops-grad-table.js';
import { OPS, type Family } from './ops-table.js';

/** Call at the top level of a test file (it awaits the WebGPU probe). */
export function describeParity(family: Family): Promise<void> {
  return describeTableParity(`parity ops/${family}`, 'ops', TABLE, (c) => OPS[c.op]?.family === family);
}
