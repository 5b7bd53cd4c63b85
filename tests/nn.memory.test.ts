// A steady-state training loop allocates nothing that outlives a step: 20
// SGD steps (momentum, nesterov, weight decay) of the small CNN keep the
// live tensor count and bytes in use flat, on every backend.
import { expect, it } from 'vitest';
import { manualSeed, memory, randint, randn, tidy } from '@kiln/core';
import { CrossEntropyLoss, optim } from '@kiln/nn';
import { describeEachBackend, webgpuStatus } from '@kiln/test-helpers';
import { SmallCNN } from '../packages/nn/test/small-cnn.js';

const webgpu = await webgpuStatus();

describeEachBackend('nn training memory', webgpu, (device) => {
  for (const kind of ['SGD', 'Adam'] as const) {
    it(`${kind}: memory() is the same after step 2 and step 20`, async () => {
      manualSeed(7);
      const model = new SmallCNN();
      await model.to(device);
      const opt = kind === 'SGD'
        ? new optim.SGD([{ params: model.fc.parameters(), lr: 0.1 }, { params: model.parameters().filter((p) => !model.fc.parameters().includes(p)), weightDecay: 1e-4 }], { lr: 0.01, momentum: 0.9, nesterov: true })
        : new optim.Adam(model.parameters(), { lr: 1e-3, weightDecay: 1e-4 });
      const lossFn = new CrossEntropyLoss();
      const x = randn([4, 3, 16, 16], { device });
      const y = randint(0, 10, [4], { device });
      const snapshots: Record<number, { numTensors: number; bytesInUse: number }> = {};
      for (let step = 1; step <= 20; step++) {
        opt.zeroGrad();
        const loss = tidy(() => lossFn.call(model.call(x), y));
        loss.backward();
        opt.step();
        await loss.item();
        loss.dispose();
        const { numTensors, bytesInUse } = memory(device);
        snapshots[step] = { numTensors, bytesInUse };
      }
      expect(snapshots[20]).toEqual(snapshots[2]);
      x.dispose();
      y.dispose();
      opt.zeroGrad();
      // Freed now, so the garbage collector cannot return them during a later measurement.
      opt.dispose();
      model.dispose();
    });
  }
});
