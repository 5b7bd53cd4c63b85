// CNN-op calls PyTorch rejects (tests/reference/gen_cnn.py's error cases)
// must be rejected by Kiln with a KilnError whose message names the op the
// user called. Validation is in core, before any backend runs: cpu suffices.
import { afterAll, describe, expect, it } from 'vitest';
import * as kiln from '@kiln/core';
import { describeReference } from './helpers/reference.js';
import { applyView } from './parity/ops-table.js';
import { CNN_OPS } from './parity/cnn-table.js';

describeReference('cnn error paths', 'cnn', (ref) => {
  let checked = 0;
  afterAll(() => console.log(`cnn error paths: ${checked} of ${ref.errors.length} error cases checked on cpu`));

  it('every op in the reference file has a row in the cnn table', () => {
    const unmapped = [...new Set([...ref.cases, ...ref.errors].map((c) => c.op))].filter((op) => !CNN_OPS[op]);
    expect(unmapped).toEqual([]);
  });

  describe('rejects what PyTorch rejects', () => {
    it('the reference holds error cases (an empty list would check nothing)', () => expect(ref.errors.length).toBeGreaterThan(0));
    for (const e of ref.errors) {
      it(`${e.name} (torch: ${e.torchError.slice(0, 80)})`, () => {
        checked++;
        const inputs = e.inputs.map((rec) => applyView(kiln.zeros(rec.shape, { dtype: rec.dtype }), rec.view));
        let thrown: unknown;
        try {
          kiln.tidy(() => CNN_OPS[e.op]!.run(inputs, e.args, 'cpu'));
        } catch (err) {
          thrown = err;
        } finally {
          for (const t of inputs) t.dispose();
        }
        expect(thrown, 'an error').toBeInstanceOf(kiln.KilnError);
        expect((thrown as Error).message, 'the message names the op').toContain(`${e.op}:`);
      });
    }
  });
});
