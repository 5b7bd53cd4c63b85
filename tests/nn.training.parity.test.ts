// Training the small CNN of tests/reference/gen_nn.py step for step against
// PyTorch, on every backend: SGD (nesterov, two parameter groups, weight
// decay on one), Adam and AdamW (amsgrad), each with a LinearLR warm-up
// then cosine annealing through SequentialLR, conv1 frozen.
import { expect, it } from 'vitest';
import { tidy, type Tensor } from '@kiln/core';
import { CrossEntropyLoss, lrScheduler, optim, type Module } from '@kiln/nn';
import { describeEachBackend, describeReference, expectClose, webgpuStatus, type Tolerance } from '@kiln/test-helpers';
import { SmallCNN } from '../packages/nn/test/small-cnn.js';
import { nnRecord, upload, uploadState, type TrainingRecord } from '../packages/nn/test/reference-nn.js';

// Ten steps of float32 training: conv/matmul sum in a different order than
// PyTorch's and the difference compounds a little each step. Observed on cpu
// and lavapipe: within rtol 1e-6 (losses) and 1e-5 (weights); the bounds
// leave 10x for other adapters.
const LOSS_TOL: Tolerance = { rtol: 1e-5, atol: 1e-6 };
const WEIGHT_TOL: Tolerance = { rtol: 1e-4, atol: 1e-5 };
const LR_TOL: Tolerance = { rtol: 1e-12, atol: 0 };

function makeOptimizer(kind: TrainingRecord['optimizer'], model: SmallCNN): optim.Optimizer {
  const body = model.namedParameters().filter(([n]) => !n.startsWith('fc.')).map(([, p]) => p);
  const head = model.fc.parameters();
  switch (kind) {
    case 'sgd':
      return new optim.SGD([{ params: body, weightDecay: 1e-3 }, { params: head, lr: 0.1 }], { lr: 0.05, momentum: 0.9, nesterov: true });
    case 'adam':
      return new optim.Adam([{ params: body, weightDecay: 1e-3 }, { params: head, lr: 5e-3 }], { lr: 2e-3 });
    case 'adamw':
      return new optim.AdamW([{ params: body }, { params: head, lr: 5e-3, weightDecay: 0.1 }], { lr: 2e-3, amsgrad: true });
  }
}

const webgpu = await webgpuStatus();

describeReference('nn training parity', 'nn', (ref) => {
  const nn = nnRecord(ref);
  describeEachBackend('nn training parity', webgpu, (device) => {
    for (const rec of nn.training) {
      it(`${rec.optimizer}: 10 steps match PyTorch (losses, lrs, weights, BN stats; frozen conv1 untouched)`, async () => {
        const model = new SmallCNN();
        const initial = uploadState(ref, nn.cnn.initial, 'cpu');
        model.loadStateDict(initial);
        await model.to(device);
        model.conv1.requiresGrad_(false);
        const opt = makeOptimizer(rec.optimizer, model);
        const warmup = new lrScheduler.LinearLR(opt, { startFactor: 0.25, totalIters: 3 });
        const cosine = new lrScheduler.CosineAnnealingLR(opt, 7, { etaMin: 1e-4 });
        const sched = new lrScheduler.SequentialLR(opt, [warmup, cosine], [3]);
        const lossFn = new CrossEntropyLoss({ labelSmoothing: 0.1 });
        const losses: number[] = [];
        const lrs: number[][] = [];
        model.train();
        for (const batch of nn.cnn.data) {
          const x = upload(ref, batch.x, device);
          const y = upload(ref, batch.y, device);
          lrs.push(opt.paramGroups.map((g) => g.lr));
          opt.zeroGrad();
          const loss = tidy(() => lossFn.call(model.call(x), y));
          loss.backward();
          opt.step();
          sched.step();
          losses.push(await loss.item());
          [x, y, loss].forEach((t) => t.dispose());
        }
        expectClose(losses, rec.losses, LOSS_TOL, 'losses');
        expectClose(lrs.flat(), rec.lrs.flat(), LR_TOL, 'lr sequence');
        expectClose(sched.getLastLr(), rec.lastLr, LR_TOL, 'last lr');

        // Frozen: no gradient, and the very same bits as loaded.
        expect(model.conv1.weight.grad).toBeNull();
        expect(Array.from(await model.conv1.weight.toArray())).toEqual(Array.from(initial['conv1.weight']!.dataSync()));

        const final = model.stateDict();
        expect(Object.keys(final)).toEqual(rec.final.map((e) => e.key));
        for (const e of rec.final) {
          const t = final[e.key]!;
          expect(t.dtype, e.key).toBe(e.tensor.dtype);
          const tol = e.tensor.dtype === 'float32' ? WEIGHT_TOL : { rtol: 0, atol: 0 };
          expectClose(await t.toArray(), ref.values(e.tensor), tol, e.key);
        }

        model.eval();
        const x0 = upload(ref, nn.cnn.data[0]!.x, device);
        const logits = tidy(() => model.call(x0));
        expectClose(await logits.toArray(), ref.values(rec.evalLogits), WEIGHT_TOL, 'eval-mode logits');

        // Optimizer state dict: PyTorch's layout (indices, state entries, group keys).
        const sd = opt.stateDict();
        expect(Object.fromEntries(Object.entries(sd.state).map(([k, s]) => [k, Object.keys(s).sort()]))).toEqual(rec.layout.state);
        expect(sd.param_groups.map((g) => ({ keys: Object.keys(g).sort(), params: g.params }))).toEqual(rec.layout.param_groups);
        if (rec.optimizer === 'sgd') {
          const fcParams = model.fc.parameters();
          for (let i = 0; i < fcParams.length; i++) {
            const buf = opt.state.get(fcParams[i]!)!.momentum_buffer as Tensor;
            expectClose(await buf.toArray(), ref.values(rec.momentumBuffers[i]!), WEIGHT_TOL, `fc momentum_buffer ${i}`);
          }
        }
        for (const t of [...Object.values(final), ...Object.values(initial), x0, logits]) t.dispose();
        disposeModel(model);
      });
    }
  });
});

function disposeModel(m: Module): void {
  for (const t of [...m.parameters(), ...m.buffers()]) {
    t.grad?.dispose();
    t.dispose();
  }
}
