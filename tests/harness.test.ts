// Proves the test harness itself: the comparison every parity test relies on,
// and that the reference files decode to tensors of the sizes they claim.
import { describe, expect, it } from 'vitest';
import { EXACT, mismatch } from './helpers/compare.js';
import { describeReference } from './helpers/reference.js';

describe('mismatch (allclose)', () => {
  it('accepts values within atol + rtol * |expected|', () => {
    expect(mismatch([1.0001, -2], [1, -2], { rtol: 1e-4, atol: 0 })).toBeNull();
  });
  it('reports the count and the worst element', () => {
    const msg = mismatch([1, 5, 3.1], [1, 2, 3], { rtol: 0, atol: 0.2 });
    expect(msg).toMatch(/^1\/3 elements differ/);
    expect(msg).toMatch(/flat index 1: got 5, expected 2/);
  });
  it('treats NaN as equal only to NaN and infinities only to themselves', () => {
    expect(mismatch([NaN, Infinity], [NaN, Infinity], EXACT)).toBeNull();
    expect(mismatch([0], [NaN], EXACT)).not.toBeNull();
    expect(mismatch([NaN], [0], { rtol: 1, atol: 1 })).not.toBeNull();
    expect(mismatch([-Infinity], [Infinity], { rtol: 1, atol: 1 })).not.toBeNull();
  });
  it('rejects a length mismatch', () => {
    expect(mismatch([1, 2], [1], EXACT)).toMatch(/length/);
  });
});

describeReference('reference file ops', 'ops', (ref) => {
  const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
  it('has cases and error cases with unique names', () => {
    expect(ref.cases.length).toBeGreaterThan(0);
    expect(new Set(ref.cases.map((c) => c.name)).size).toBe(ref.cases.length);
  });
  it('decodes every tensor to as many values as its shape holds', () => {
    for (const c of ref.cases) {
      const records = [...c.inputs, ...c.outputs, ...c.gradOutputs, ...c.grads].filter((r) => r !== null);
      for (const r of records) expect(ref.values(r).length, c.name).toBe(numel(r.shape));
    }
  });
});
