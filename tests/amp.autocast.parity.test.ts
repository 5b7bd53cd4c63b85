// Autocast on every backend: PyTorch's op lists decide each op's dtype
// (conv2d/linear/matmul float16; softmax, logSoftmax, crossEntropy, sum,
// exp, log, pow float32; cat at the widest input; batch norm in its input's
// dtype), gradients of float32 parameters come back float32, and the small
// CNN of tests/reference/gen_nn.py trained 10 SGD steps under autocast +
// GradScaler tracks PyTorch's float32 losses, ending with float32 weights.
import { afterAll, expect, it } from 'vitest';
import * as kiln from '@kiln/core';
import { autocast, autocastScope, type Tensor } from '@kiln/core';
import { CrossEntropyLoss, GradScaler, optim } from '@kiln/nn';
import { describeEachBackend, describeReference, expectClose, webgpuStatus, type Tolerance } from '@kiln/test-helpers';
import { SmallCNN } from '../packages/nn/test/small-cnn.js';
import { nnRecord, upload, uploadState } from '../packages/nn/test/reference-nn.js';

const webgpu = await webgpuStatus();
// float16 activations carry a relative rounding error of up to 2^-11 per op
// through two conv/BN/ReLU stages and the classifier (BatchNorm's
// statistics and the loss are float32), and the weights the SGD steps
// produce drift with it. Observed on cpu and lavapipe: losses within 4.4e-5
// relative of PyTorch's float32 run over the 10 steps (bound: about 7x),
// final weights within 3.1e-3 absolute (bound: 2x, plus 2% relative for the
// larger weights).
const LOSS_TOL: Tolerance = { rtol: 3e-4, atol: 1e-5 };
const WEIGHT_TOL: Tolerance = { rtol: 2e-2, atol: 6e-3 };
const lines: string[] = [];
afterAll(() => console.log(`autocast: ${lines.join('; ')}; losses rtol ${LOSS_TOL.rtol} atol ${LOSS_TOL.atol}, weights rtol ${WEIGHT_TOL.rtol} atol ${WEIGHT_TOL.atol}`));

describeEachBackend('autocast op policy', webgpu, (device) => {
  it("each op runs in PyTorch's autocast dtype; float32 parameters get float32 gradients", () => {
    kiln.tidy(() => {
      const w = kiln.randn([4, 3], { device, requiresGrad: true });
      const x = kiln.randn([2, 4], { device });
      const h = kiln.randn([2, 3], { device }).half();
      const img = kiln.randn([1, 2, 4, 4], { device });
      const k = kiln.randn([3, 2, 3, 3], { device, requiresGrad: true });
      const out = autocast(() => {
        const y = x.matmul(w);
        const c = kiln.conv2d(img, k, null, { padding: 1 });
        return {
          y,
          c,
          bn: kiln.batchNorm(c, null, null, { training: true }),
          soft: kiln.softmax(y, 1),
          sum: y.sum(),
          exp: y.exp(),
          add: y.add(x.matmul(kiln.randn([4, 3], { device }))),
          mixed: y.add(kiln.randn([2, 3], { device })),
          cat: kiln.cat([y, kiln.randn([2, 3], { device })], 0),
          catHalf: kiln.cat([y, h], 0),
          off: autocast(() => x.matmul(w), { enabled: false }),
        };
      });
      expect(Object.fromEntries(Object.entries(out).map(([n, t]) => [n, t.dtype]))).toEqual({
        y: 'float16', c: 'float16', bn: 'float16', soft: 'float32', sum: 'float32', exp: 'float32',
        add: 'float16', mixed: 'float32', cat: 'float32', catHalf: 'float16', off: 'float32',
      });
      out.y.sum().add(out.c.sum()).backward();
      expect([w.grad!.dtype, k.grad!.dtype]).toEqual(['float32', 'float32']);
      // Outside the scope nothing is cast.
      expect(x.matmul(w).dtype).toBe('float32');
      {
        using _scope = autocastScope();
        expect(x.matmul(w).dtype).toBe('float16');
      }
      expect(x.matmul(w).dtype).toBe('float32');
    });
    expect(() => autocast(async () => 1)).toThrow(/autocast\(\) scope cannot span an await/);
    expect(kiln.isAutocastEnabled()).toBe(false);
  });
});

describeReference('autocast + GradScaler training vs PyTorch float32', 'nn', (ref) => {
  const nn = nnRecord(ref);
  const sgd = nn.training.find((r) => r.optimizer === 'sgd')!;
  describeEachBackend('autocast training', webgpu, (device) => {
    it('small CNN, 10 SGD steps under autocast + GradScaler: losses track the float32 run, final weights are float32', async () => {
      const model = new SmallCNN();
      const initial = uploadState(ref, nn.cnn.initial, 'cpu');
      model.loadStateDict(initial);
      await model.to(device);
      model.conv1.requiresGrad_(false);
      const body = model.namedParameters().filter(([n]) => !n.startsWith('fc.')).map(([, p]) => p);
      const opt = new optim.SGD([{ params: body, weightDecay: 1e-3 }, { params: model.fc.parameters(), lr: 0.1 }], { lr: 0.05, momentum: 0.9, nesterov: true });
      const lrs = sgd.lrs;
      const lossFn = new CrossEntropyLoss({ labelSmoothing: 0.1 });
      const scaler = new GradScaler();
      const losses: number[] = [];
      model.train();
      let step = 0;
      for (const batch of nn.cnn.data) {
        // The float32 run's learning rates (its schedulers), so only the precision differs.
        opt.paramGroups.forEach((g, i) => (g.lr = lrs[step]![i]!));
        const x = upload(ref, batch.x, device);
        const y = upload(ref, batch.y, device);
        opt.zeroGrad();
        const loss = kiln.tidy(() => autocast(() => lossFn.call(model.call(x), y)));
        expect(loss.dtype).toBe('float32');
        kiln.tidy(() => scaler.scale(loss).backward());
        await scaler.step(opt);
        scaler.update();
        losses.push(await loss.item());
        [x, y, loss].forEach((t) => t.dispose());
        step++;
      }
      expectClose(losses, sgd.losses, LOSS_TOL, 'losses');
      const worst = Math.max(...losses.map((l, i) => Math.abs(l - sgd.losses[i]!) / Math.abs(sgd.losses[i]!)));
      lines.push(`${device}: worst loss rel. error ${worst.toExponential(2)}, final scale ${scaler.getScale()}`);
      const final = model.stateDict();
      let worstWeight = 0;
      for (const e of sgd.final) {
        const t = final[e.key] as Tensor;
        expect(t.dtype, e.key).toBe(e.tensor.dtype);
        if (e.tensor.dtype !== 'float32') continue;
        const got = await t.toArray();
        const want = ref.values(e.tensor);
        for (let i = 0; i < want.length; i++) worstWeight = Math.max(worstWeight, Math.abs(got[i]! - want[i]!));
        expectClose(got, want, WEIGHT_TOL, e.key);
      }
      lines.push(`${device}: worst final-weight |diff| ${worstWeight.toExponential(2)}`);
      for (const t of [...Object.values(initial)]) t.dispose();
      opt.dispose();
      model.dispose();
    });
  });
});
