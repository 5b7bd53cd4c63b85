// Transfer-learning building blocks on a small BasicBlock network: freezing,
// frozen BatchNorm kept in eval mode through model.train(), parameter groups.
import { describe, expect, it } from 'vitest';
import { crossEntropy, manualSeed, noGrad, randn, tensor } from '@kiln/core';
import { BatchNorm2d, Linear, optim } from '@kiln/nn';
import { FeatureExtractor, ResNet, freezeBatchNorm } from '@kiln/resnet';

// A ResNet with one block per stage at 32x32 input: the same code as resnet18, cheap.
const tiny = () => new ResNet([1, 1, 1, 1], { numClasses: 4 });

describe('freezeBatchNorm', () => {
  manualSeed(5);

  it('keeps BatchNorm of frozen parts in eval mode through model.train(); trainable ones train', () => {
    const model = tiny();
    model.requiresGrad_(false);
    model.layer4.requiresGrad_(true);
    const frozen = freezeBatchNorm(model);
    model.train();
    expect(frozen.names).toContain('bn1');
    expect(frozen.names).toContain('layer3.0.downsample.1');
    expect(frozen.names.some((n) => n.startsWith('layer4'))).toBe(false);
    for (const [name, m] of model.namedModules()) {
      if (m instanceof BatchNorm2d) expect(m.training, name).toBe(name.startsWith('layer4'));
    }
    expect(model.layer1.training).toBe(true);
    frozen.release();
    model.train();
    expect(model.bn1.training).toBe(true);
  });

  it("a training step leaves frozen BN running stats and frozen weights untouched, updates layer4 and fc", () => {
    const model = tiny();
    model.fc = new Linear(512, 3);
    model.requiresGrad_(false);
    model.layer4.requiresGrad_(true);
    model.fc.requiresGrad_(true);
    freezeBatchNorm(model);
    model.train();
    const opt = new optim.SGD([{ params: model.layer4.parameters(), lr: 1e-3 }, { params: model.fc.parameters(), lr: 1e-2 }], { lr: 0.1, momentum: 0.9 });
    const snapshot = () => new Map(Object.entries(model.stateDict()).map(([k, t]) => [k, [...t.dataSync()]]));
    const before = snapshot();
    const loss = crossEntropy(model.call(randn([2, 3, 32, 32])), tensor([0, 2], { dtype: 'int32' }));
    loss.backward();
    expect(model.conv1.weight.grad).toBeNull();
    expect(model.layer4.at(0).parameters().every((p) => p.grad !== null)).toBe(true);
    opt.step();
    const after = snapshot();
    for (const [k, v] of before) {
      const changed = v.some((x, i) => x !== after.get(k)![i]);
      const trainable = k.startsWith('layer4.') || k.startsWith('fc.');
      // layer4's BN buffers update in train mode; conv weights of layer4 and fc move.
      expect(changed, k).toBe(trainable && !k.endsWith('num_batches_tracked') ? true : k.startsWith('layer4.') && k.endsWith('num_batches_tracked'));
    }
  });
});

describe('features', () => {
  it('forwardFeatures gives layer4 and pooled [B, 512]; forward = fc(pooled); FeatureExtractor returns pooled', () => {
    const model = tiny().eval();
    const x = randn([2, 3, 64, 64]);
    noGrad(() => {
      const { layer4, pooled } = model.forwardFeatures(x);
      expect(layer4.shape).toEqual([2, 512, 2, 2]);
      expect(pooled.shape).toEqual([2, 512]);
      const logits = model.call(x);
      const viaFc = model.fc.call(pooled);
      expect(logits.shape).toEqual([2, 4]);
      expect([...logits.dataSync()].map((v, i) => Math.abs(v - viaFc.dataSync()[i]!)).every((d) => d < 1e-5)).toBe(true);
      const fx = new FeatureExtractor(model);
      const f = fx.call(x);
      expect([...f.dataSync()].map((v, i) => Math.abs(v - pooled.dataSync()[i]!)).every((d) => d < 1e-5)).toBe(true);
      expect(Object.keys(fx.stateDict())[0]).toBe('backbone.conv1.weight');
    });
  });

  it('a forward hook on layer4 sees its output (for fusing features with another vector)', () => {
    const model = tiny().eval();
    let seen: readonly number[] | null = null;
    const h = model.layer4.registerForwardHook((_m, _a, out) => {
      seen = (out as import('@kiln/core').Tensor).shape;
    });
    noGrad(() => model.call(randn([1, 3, 32, 32])));
    h.remove();
    expect(seen).toEqual([1, 512, 1, 1]);
  });
});
