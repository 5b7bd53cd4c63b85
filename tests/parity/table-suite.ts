// Registers parity tests for a subset of a reference file's cases on every
// backend, through an op table (see table-case.ts), and prints one line per
// suite with the tolerances and how many cases ran on each backend.
import { afterAll, describe, it } from 'vitest';
import type { Tolerance } from '../helpers/compare.js';
import { describeEachBackend, webgpuStatus, type EachBackendOptions } from '../helpers/env.js';
import { describeReference, type RefCase } from '../helpers/reference.js';
import { runTableCase, type Table } from './table-case.js';

const fmtTol = (t: Tolerance) => `rtol ${t.rtol} atol ${t.atol}`;

/**
 * Call at the top level of a test file (it awaits the WebGPU probe).
 * `options.strategies` adds a WebGPU pass under the other kernel strategy class.
 */
export async function describeTableParity(
  title: string, refName: string, table: Table, select: (c: RefCase) => boolean, options: EachBackendOptions = {},
): Promise<void> {
  const webgpu = await webgpuStatus();
  describeReference(title, refName, (ref) => {
    const cases = ref.cases.filter(select);
    const ran = new Map<string, number>();
    const failed = new Map<string, number>();
    afterAll(() => {
      // Ops grouped by tolerance, so the line stays one readable line.
      const byTol = new Map<string, string[]>();
      for (const op of new Set(cases.map((c) => c.op))) {
        const spec = table[op];
        if (!spec) continue;
        const key = spec.caseTol
          ? `scaled per case (up to ${fmtTol(spec.tol)})`
          : `${fmtTol(spec.tol)}${spec.gradTol ? `, grads ${fmtTol(spec.gradTol)}` : ''}`;
        byTol.set(key, [...(byTol.get(key) ?? []), op]);
      }
      const tols = [...byTol].map(([tol, ops]) => `${ops.length > 4 ? `${ops.length} ops` : ops.join(', ')}: ${tol}`).join('; ');
      const counts = [...ran].map(([b, n]) => `${n} cases on ${b} (${failed.get(b) ?? 0} failed)`).join(', ');
      console.log(`${title}: ${counts || 'no cases ran'} (of ${cases.length}; PyTorch ${ref.torch}); tolerances ${tols}`);
    });
    describe('every selected op has a table row', () => {
      it('the reference file holds cases for this suite', () => {
        // An empty selection would pass every backend by running nothing.
        if (cases.length === 0) throw new Error(`${ref.generator} wrote no cases for '${title}': the suite would check nothing`);
      });
      it('maps all ops', () => {
        const missing = [...new Set(cases.map((c) => c.op))].filter((op) => !table[op]);
        if (missing.length) throw new Error(`no Kiln mapping for ${missing.join(', ')}`);
      });
    });
    describeEachBackend(title, webgpu, (backend, label) => {
      for (const c of cases) {
        it(c.name, async () => {
          ran.set(label, (ran.get(label) ?? 0) + 1);
          try {
            await runTableCase(ref, c, backend, table);
          } catch (e) {
            failed.set(label, (failed.get(label) ?? 0) + 1);
            throw e;
          }
        });
      }
    }, options);
  });
}
