// The demo's stored frozen prefix (examples/demo/src/frozen-prefix.ts): with the
// seed's set-up (everything frozen but layer4 and fc, frozen BatchNorm in eval
// mode, whole-item crop), layer4 + fc on the stored activations must see what the
// whole network sees on image batches drawn from a generator with the same seed:
// the same items in the same order, the same flips, the same logits, and the
// generator left in the same state. And it must refuse a set-up it would get wrong.
import { expect, it } from 'vitest';
import { Generator, noGrad, type Tensor } from '@kiln/core';
import { Linear } from '@kiln/nn';
import { freezeBatchNorm, resnet18 } from '@kiln/resnet';
import { loadFashionMnist, selectByClass, EMBEDDED_FASHION_MNIST } from '../examples/demo/src/data/fashion-mnist.js';
import { labelledSet, trainBatches, TRANSFER_CROP_SCALE, PRETRAIN_CROP_SCALE } from '../examples/demo/src/data/images.js';
import { cachedTrainBatches, prefixNotCacheable, PrefixTail, storeTrainPrefix } from '../examples/demo/src/frozen-prefix.js';
import { describeWebGPU } from './helpers/env.js';

const TARGET = [1, 3, 5, 7, 9];

async function check(device: string): Promise<void> {
  const data = await loadFashionMnist(EMBEDDED_FASHION_MNIST, 'embedded');
  const set = labelledSet(data.train, selectByClass(data.train, TARGET, 4), TARGET);
  const pipe = { size: 32, cropScale: TRANSFER_CROP_SCALE };
  const model = resnet18({ numClasses: 5, device });
  model.fc = new Linear(512, 5, { device });
  model.requiresGrad_(false);
  model.layer4.requiresGrad_(true);
  model.fc.requiresGrad_(true);
  const frozen = freezeBatchNorm(model);
  try {
    expect(prefixNotCacheable(model, pipe)).toBeNull();
    expect(prefixNotCacheable(model, { size: 32, cropScale: PRETRAIN_CROP_SCALE })).toMatch(/crop scale/);
    const store = await storeTrainPrefix(model, set, pipe, device);
    expect(store.plain.shape).toEqual([256, 2, 2]);
    const tail = new PrefixTail(model);
    // Eval mode for the comparison: layer4's BatchNorm then uses running statistics,
    // so each item's logits do not depend on its batch and every item is compared.
    model.eval();
    const a = new Generator(11);
    const b = new Generator(11);
    const stored = [...cachedTrainBatches(store, 8, a, device)];
    const images = [...trainBatches(set, 8, pipe, b, device)];
    expect(stored.length).toBe(images.length);
    let flips = 0;
    for (let k = 0; k < stored.length; k++) {
      expect(stored[k]!.items).toEqual(images[k]!.items);
      const got = (await noGrad(() => tail.call(stored[k]!.images) as Tensor).toArray()) as Float32Array;
      const want = (await noGrad(() => model.call(images[k]!.images) as Tensor).toArray()) as Float32Array;
      // Same arithmetic on the same inputs; the prefix ran at batch 64 there and 8 here, which may
      // reorder a sum in a conv kernel: float32 rounding of ~1e-6 relative on logits of order 1.
      for (let i = 0; i < want.length; i++) expect(Math.abs(got[i]! - want[i]!)).toBeLessThan(1e-4 * Math.max(1, Math.abs(want[i]!)));
      // Count items whose stored activation is the flipped one, to be sure both variants are exercised.
      const plainVals = store.plain.values;
      const item = 256 * 4;
      const data = (await stored[k]!.images.toArray()) as Float32Array;
      stored[k]!.items.forEach((it, j) => {
        if (data[j * item] !== plainVals[it * item] || data[j * item + 1] !== plainVals[it * item + 1]) flips++;
      });
    }
    expect(flips).toBeGreaterThan(0);
    expect(a.random()).toBe(b.random());
    for (const x of [...stored, ...images]) {
      x.images.dispose();
      x.labels.dispose();
    }
    // A trainable layer3 (or a BatchNorm in training mode) makes the prefix change: refused.
    model.layer3.requiresGrad_(true);
    expect(prefixNotCacheable(model, pipe)).toMatch(/layer3\..* trains/);
  } finally {
    frozen.release();
    model.dispose();
  }
}

it('stored prefix = the whole network, same items, flips and generator state (CPU backend)', async () => {
  await check('cpu');
}, 120_000);

await describeWebGPU('stored prefix on WebGPU', () => {
  it('stored prefix = the whole network, same items, flips and generator state (WebGPU)', async () => {
    const { initWebGPU } = await import('@kiln/kernels');
    await initWebGPU();
    await check('webgpu');
  }, 120_000);
});
