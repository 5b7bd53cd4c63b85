// tests/parity/table-case.ts's runTableCase for a page, without vitest: the
// same uploads, views, forward, backward of sum(outs * gradOutputs) and
// checks (shape, dtype, values within the table's tolerance, every checked
// gradient), returning the first difference as a message instead of throwing
// an assertion. The Node side asserts that message is null.
import * as kiln from '@kiln/core';
import type { Tensor } from '@kiln/core';
import { EXACT, mismatch, type Tolerance } from '../helpers/compare.js';
import type { RefCase, TensorRecord } from '../helpers/reference.js';
import { applyView } from '../parity/ops-table.js';
import type { Table } from '../parity/table-case.js';
import type { PageReference } from './fetch-reference.js';

const upload = (ref: PageReference, rec: TensorRecord, device: string, requiresGrad = false): Tensor =>
  kiln.fromArray(ref.values(rec), rec.shape, { dtype: rec.dtype, device, requiresGrad });

async function compare(t: Tensor, rec: TensorRecord, ref: PageReference, tol: Tolerance, what: string): Promise<string | null> {
  if (t.shape.join(',') !== rec.shape.join(',')) return `${what}: shape [${t.shape.join(', ')}], expected [${rec.shape.join(', ')}]`;
  if (t.dtype !== rec.dtype) return `${what}: dtype ${t.dtype}, expected ${rec.dtype}`;
  const bad = mismatch(await t.toArray(), ref.values(rec), rec.dtype === 'float32' ? tol : EXACT);
  return bad && `${what}: ${bad}`;
}

/** Runs case `c` on `device` through `table`; null when it matches PyTorch, else what differs first. */
export async function runCaseInPage(ref: PageReference, c: RefCase, device: string, table: Table): Promise<string | null> {
  const spec = table[c.op];
  if (!spec) return `no Kiln mapping for reference op '${c.op}'`;
  const held: Tensor[] = [];
  try {
    const { leaves, outs } = kiln.tidy(() => {
      const leaves = c.inputs.map((rec) => upload(ref, rec, device, rec.requiresGrad));
      const operands = leaves.map((leaf, i) => applyView(leaf, c.inputs[i]!.view));
      const result = spec.run(operands, c.args, device);
      return { leaves, outs: Array.isArray(result) ? result : [result] };
    });
    held.push(...leaves, ...outs);
    if (outs.length !== c.outputs.length) return `${outs.length} outputs, expected ${c.outputs.length}`;
    for (let i = 0; i < outs.length; i++) {
      const bad = await compare(outs[i]!, c.outputs[i]!, ref, spec.tol, `output ${i}`);
      if (bad) return bad;
    }
    if (!c.grads.some((g) => g !== null)) return null;
    kiln.tidy(() => {
      const differentiable = outs.flatMap((o, i) => (c.gradOutputs[i] ? [{ out: o, gout: upload(ref, c.gradOutputs[i]!, device) }] : []));
      if (differentiable.length === 1) differentiable[0]!.out.backward(differentiable[0]!.gout);
      else differentiable.map(({ out, gout }) => out.mul(gout).sum()).reduce((a, b) => a.add(b)).backward();
    });
    const gradTol = spec.gradTol ?? spec.tol;
    for (let i = 0; i < leaves.length; i++) {
      const expected = c.grads[i];
      if (!expected) continue;
      const grad = leaves[i]!.grad;
      if (!grad) return `input ${i}: no .grad after backward()`;
      held.push(grad);
      const bad = await compare(grad, expected, ref, gradTol, `grad of input ${i}`);
      if (bad) return bad;
    }
    return null;
  } finally {
    for (const t of held) t.dispose();
  }
}
