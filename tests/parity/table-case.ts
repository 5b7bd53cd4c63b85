// Runs one PyTorch reference case through any op table (an OPS-like record),
// for reference files other than gen_ops.py (gen_cnn.py, gen_autograd.py).
// Same checks as run-case.ts's runCase, which is bound to the ops table:
// outputs (shape, dtype, values) and the gradient of every checked input.
import { expect } from 'vitest';
import * as kiln from '@kiln/core';
import type { Tensor } from '@kiln/core';
import { EXACT, expectClose, type Tolerance } from '../helpers/compare.js';
import type { RefCase, ReferenceFile, TensorRecord } from '../helpers/reference.js';
import { applyView } from './ops-table.js';

/** How to run one reference op in Kiln, and how closely it must match. */
export interface TableSpec {
  /** Calls Kiln with the case's operands (views applied) and args; gradients need grad mode on. */
  run(inputs: Tensor[], args: Record<string, any>, device: string): Tensor | Tensor[];
  /** Float outputs; integer and bool outputs are compared exactly. */
  tol: Tolerance;
  /** Input gradients (defaults to `tol`). */
  gradTol?: Tolerance;
  /**
   * Per-case tolerances, for ops whose rounding error grows with the case's
   * size (a conv's reduction length): the output's, and each input
   * gradient's (undefined entries fall back to `gradTol`/`tol`).
   */
  caseTol?(c: RefCase): { tol: Tolerance; gradTols: (Tolerance | undefined)[] };
}

export type Table = Record<string, TableSpec>;

/** Uploads a reference tensor record to `device`. */
export function upload(ref: ReferenceFile, rec: TensorRecord, device: string, requiresGrad = false): Tensor {
  return kiln.fromArray(ref.values(rec), rec.shape, { dtype: rec.dtype, device, requiresGrad });
}

/** Checks shape, dtype and values of `t` against a reference record. */
export async function expectTensor(t: Tensor, rec: TensorRecord, ref: ReferenceFile, tol: Tolerance, what: string): Promise<void> {
  expect([...t.shape], `${what}: shape`).toEqual(rec.shape);
  expect(t.dtype, `${what}: dtype`).toBe(rec.dtype);
  expectClose(await t.toArray(), ref.values(rec), rec.dtype === 'float32' ? tol : EXACT, what);
}

/**
 * Checks case `c` on `device` against PyTorch through `table`; throws on any
 * difference. Every tensor it creates is disposed before it returns.
 */
export async function runTableCase(ref: ReferenceFile, c: RefCase, device: string, table: Table): Promise<void> {
  const spec = table[c.op];
  if (!spec) throw new Error(`no Kiln mapping for reference op '${c.op}'`);
  // Kiln's scopes are synchronous: the forward runs in one tidy, the
  // backward in another, and the checks await between them; what the scopes
  // return is freed once the case is done, pass or fail.
  const held: Tensor[] = [];
  try {
    const { leaves, outs } = kiln.tidy(() => {
      const leaves = c.inputs.map((rec) => upload(ref, rec, device, rec.requiresGrad));
      const operands = leaves.map((leaf, i) => applyView(leaf, c.inputs[i]!.view));
      const result = spec.run(operands, c.args, device);
      return { leaves, outs: Array.isArray(result) ? result : [result] };
    });
    held.push(...leaves, ...outs);
    expect(outs.length, 'number of outputs').toBe(c.outputs.length);
    const perCase = spec.caseTol?.(c);
    for (let i = 0; i < outs.length; i++) await expectTensor(outs[i]!, c.outputs[i]!, ref, perCase?.tol ?? spec.tol, `output ${i}`);

    if (!c.grads.some((g) => g !== null)) return;
    kiln.tidy(() => {
      // Backpropagate sum_i outs[i] * gradOutputs[i], the quantity PyTorch differentiated.
      const differentiable = outs.flatMap((o, i) => (c.gradOutputs[i] ? [{ out: o, gout: upload(ref, c.gradOutputs[i]!, device) }] : []));
      if (differentiable.length === 1) differentiable[0]!.out.backward(differentiable[0]!.gout);
      else differentiable.map(({ out, gout }) => out.mul(gout).sum()).reduce((a, b) => a.add(b)).backward();
    });

    const gradTol = spec.gradTol ?? spec.tol;
    for (let i = 0; i < leaves.length; i++) {
      const expected = c.grads[i];
      if (!expected) continue;
      const grad = leaves[i]!.grad;
      expect(grad, `input ${i}: .grad after backward()`).toBeTruthy();
      held.push(grad!);
      await expectTensor(grad!, expected, ref, perCase?.gradTols[i] ?? gradTol, `grad of input ${i}`);
    }
  } finally {
    for (const t of held) t.dispose();
  }
}
