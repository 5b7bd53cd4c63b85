// Calls PyTorch rejects must be rejected by Kiln too, with a KilnError naming
// the op (the cases come from tests/reference/gen_ops.py). Validation lives
// in core, before any backend runs, so the CPU backend suffices.
import { describe, expect, it } from 'vitest';
import * as kiln from '@kiln/core';
import { describeReference } from './helpers/reference.js';
import { OPS, applyView } from './parity/ops-table.js';

describeReference('ops error paths', 'ops', (ref) => {
  it('every op in the reference file has a row in the ops table', () => {
    const unmapped = [...new Set([...ref.cases, ...ref.errors].map((c) => c.op))].filter((op) => !OPS[op]);
    expect(unmapped).toEqual([]);
  });

  describe('rejects what PyTorch rejects', () => {
    it('the reference holds error cases (an empty list would check nothing)', () => expect(ref.errors.length).toBeGreaterThan(0));
    for (const e of ref.errors) {
      it(`${e.name} (torch: ${e.torchError.slice(0, 80)})`, () => {
        const inputs = e.inputs.map((rec) => applyView(kiln.zeros(rec.shape, { dtype: rec.dtype }), rec.view));
        let thrown: unknown;
        try {
          OPS[e.op]!.run(inputs, e.args, 'cpu');
        } catch (err) {
          thrown = err;
        }
        expect(thrown, 'an error').toBeInstanceOf(kiln.KilnError);
        expect((thrown as Error).message, 'the message names the op').toContain(e.op);
      });
    }
  });
});
