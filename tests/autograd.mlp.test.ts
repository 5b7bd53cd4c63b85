// The composed autograd check: a 2-layer MLP with softmax cross-entropy
// built from core ops only (matmul, add, relu, logSoftmax, gather, mean),
// trained 10 plain SGD steps from PyTorch's initial weights and data
// (tests/reference/gen_autograd.py). The loss at every step and the final
// weights must match PyTorch on every backend.
import { afterAll, expect, it } from 'vitest';
import * as kiln from '@kiln/core';
import { expectClose } from './helpers/compare.js';
import { describeEachBackend, webgpuStatus } from './helpers/env.js';
import { describeReference } from './helpers/reference.js';
import { MLP_LOSS_TOL, MLP_WEIGHT_TOL, mlpSgd } from './parity/autograd-table.js';
import { upload } from './parity/table-case.js';

const webgpu = await webgpuStatus();
const PARAMS = ['w1', 'b1', 'w2', 'b2'];

describeReference('autograd mlp+sgd vs PyTorch', 'autograd', (ref) => {
  const cases = ref.cases.filter((c) => c.op === 'mlpSgd');
  const ran = new Map<string, number>();
  afterAll(() => {
    console.log(`autograd mlp+sgd: ${[...ran].map(([b, n]) => `${n} case(s) on ${b}`).join(', ') || 'no cases ran'} ` +
      `(${cases.length} in reference; PyTorch ${ref.torch}); losses rtol ${MLP_LOSS_TOL.rtol} atol ${MLP_LOSS_TOL.atol}, ` +
      `final weights rtol ${MLP_WEIGHT_TOL.rtol} atol ${MLP_WEIGHT_TOL.atol}`);
  });
  it('the reference holds the MLP case', () => expect(cases.length).toBeGreaterThan(0));

  describeEachBackend('autograd mlp+sgd', webgpu, (device) => {
    for (const c of cases) {
      it(`${c.name}: loss at every step and final weights match PyTorch`, async () => {
        ran.set(device, (ran.get(device) ?? 0) + 1);
        const inputs = c.inputs.map((rec) => upload(ref, rec, device));
        const [losses, ...weights] = mlpSgd(inputs, c.args as { steps: number; lr: number });
        try {
          expect(losses!.shape).toEqual(c.outputs[0]!.shape);
          const expectedLosses = ref.values(c.outputs[0]!);
          // The run must actually train: the reference loss falls.
          expect(expectedLosses[expectedLosses.length - 1]!).toBeLessThan(expectedLosses[0]!);
          expectClose(await losses!.toArray(), expectedLosses, MLP_LOSS_TOL, 'loss per step');
          for (let i = 0; i < weights.length; i++) {
            expect(weights[i]!.shape).toEqual(c.outputs[i + 1]!.shape);
            expectClose(await weights[i]!.toArray(), ref.values(c.outputs[i + 1]!), MLP_WEIGHT_TOL, `final ${PARAMS[i]}`);
          }
        } finally {
          for (const t of [losses!, ...weights, ...inputs]) t.dispose();
        }
      });
    }
  });
});
