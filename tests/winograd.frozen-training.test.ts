// A frozen conv (requiresGrad false: its weight is never written) keeps its
// Winograd filter transforms through training steps, forward and the flipped
// one its input gradient uses; a trained conv's weight changes every step and
// is re-transformed (packages/kernels/src/ops/winograd.ts keys the cache on
// the weight buffer's version). The 32x32 demo's frozen transfer step relies
// on this: only layer4 and fc train.
import { expect, it } from 'vitest';
import { fromArray, tidy } from '@kiln/core';
import { initWebGPU } from '@kiln/kernels';
import { Conv2d, optim } from '@kiln/nn';
import { describeWebGPU } from './helpers/env.js';

await describeWebGPU('winograd filter cache in training', () => {
  it('transforms a frozen conv once, a trained conv every step', async () => {
    const be = await initWebGPU();
    // 8x8 maps at batch 4: F(4x4) in either strategy class (tuning.ts winogradTile; 64 tiles).
    const trained = new Conv2d(8, 8, 3, { padding: 1, bias: false, device: 'webgpu' });
    const frozen = new Conv2d(8, 8, 3, { padding: 1, bias: false, device: 'webgpu' });
    frozen.requiresGrad_(false);
    const opt = new optim.SGD(trained.parameters(), { lr: 0.01 });
    const x = fromArray(Float32Array.from({ length: 4 * 8 * 8 * 8 }, (_, i) => Math.sin(i)), [4, 8, 8, 8], { device: 'webgpu' });
    const step = () => tidy(() => {
      opt.zeroGrad();
      // The frozen conv sits after the trained one, so the trained weight's gradient
      // passes through the frozen conv's input gradient (its flipped transform).
      const loss = frozen.call(trained.call(x).relu()).square().sum();
      loss.backward();
      opt.step();
      return loss;
    });
    const filters = async () => {
      const kernels = await be.profile(async () => {
        const l = step();
        await l.item();
        l.dispose();
      });
      const k = kernels.find((t) => t.kernel === 'winograd.filter');
      expect(kernels.some((t) => t.kernel === 'winograd.output'), 'the convs took Winograd').toBe(true);
      return k?.count ?? 0;
    };
    // First step: trained forward + frozen forward + frozen flipped.
    expect(await filters()).toBe(3);
    // Later steps: only the trained weight's forward transform (it has no input gradient: x needs none).
    expect(await filters()).toBe(1);
    expect(await filters()).toBe(1);
    x.dispose();
  });
});
