// A 1,000-step training soak on WebGPU: a small CNN (conv, batch norm,
// ReLU, max pool, linear) on 8x8 images with SGD + momentum. After a short
// warm-up every figure of memory() must stay exactly where it was: no tensor
// leaks, no byte grows, the buffer pool neither creates nor accumulates
// buffers. Loss is read every 100 steps (a readback per step would measure
// the wait, not the loop) and must fall, so the loop is really training.
import { expect, it } from 'vitest';
import * as kiln from '@kiln/core';
import type { Tensor } from '@kiln/core';
import { BatchNorm2d, Conv2d, CrossEntropyLoss, Flatten, Linear, MaxPool2d, ReLU, Sequential, optim } from '@kiln/nn';
import { describeWebGPU } from '@kiln/test-helpers';

const STEPS = 1000;
const WARMUP = 20;
const READ_EVERY = 100;

await describeWebGPU('WebGPU training soak', () => {
  it(`${STEPS} SGD steps of a small CNN keep memory() and the buffer pool flat`, { timeout: 300_000 }, async () => {
    kiln.manualSeed(0);
    const model = new Sequential(
      new Conv2d(1, 8, 3, { padding: 1 }), new BatchNorm2d(8), new ReLU(), new MaxPool2d(2),
      new Flatten(), new Linear(8 * 4 * 4, 4),
    );
    await model.to('webgpu');
    model.train();
    const opt = new optim.SGD(model.parameters(), { lr: 0.002, momentum: 0.9 });
    const lossFn = new CrossEntropyLoss();
    // Four classes, each a bright quadrant: learnable in a few hundred steps.
    const g = new kiln.Generator(3);
    const labels = kiln.tensor([0, 1, 2, 3, 0, 1, 2, 3], { dtype: 'int32' });
    const images = kiln.tidy(() => {
      const noise = kiln.randn([8, 1, 8, 8], { generator: g }).mul(1.5);
      const host = new Float32Array(8 * 64);
      for (let n = 0; n < 8; n++) {
        const q = n % 4;
        for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) host[n * 64 + (y + 4 * (q >> 1)) * 8 + x + 4 * (q & 1)] = 1;
      }
      return noise.add(kiln.fromArray(host, [8, 1, 8, 8]));
    });
    const x = await images.toDevice('webgpu');
    const y = await labels.toDevice('webgpu');
    images.dispose();
    labels.dispose();

    const step = (): Tensor => kiln.tidy(() => {
      opt.zeroGrad();
      const loss = lossFn.call(model.call(x), y) as Tensor;
      loss.backward();
      opt.step();
      return loss.detach();
    });

    const losses: number[] = [];
    let baseline: kiln.MemoryInfo | null = null;
    const started = performance.now();
    for (let i = 1; i <= STEPS; i++) {
      const loss = step();
      if (i % READ_EVERY === 0 || i === 1) losses.push(await loss.item() as number);
      loss.dispose();
      if (i === WARMUP) baseline = kiln.memory('webgpu');
      if (baseline && i % READ_EVERY === 0) {
        expect(kiln.memory('webgpu'), `memory() after step ${i} vs after warm-up step ${WARMUP}`).toEqual(baseline);
      }
    }
    const seconds = (performance.now() - started) / 1000;
    console.log(`soak: ${STEPS} steps in ${seconds.toFixed(1)} s; loss ${losses.map((l) => l.toFixed(3)).join(' -> ')}; memory ${JSON.stringify(baseline)}`);
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses.at(-1)!, 'the soak trains: the final loss is below the first').toBeLessThan(losses[0]! * 0.5);
    x.dispose();
    y.dispose();
    opt.dispose();
    model.dispose();
  });
});
