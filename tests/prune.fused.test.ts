// Hooks are the truth on every path: a ResNet18 whose convs' weights are
// re-derived by forward pre-hooks (weight_orig * weight_mask, as pruning
// does) gives the same logits on the fused inference path (BatchNorm folded
// through Module.effectiveTensor) as layer by layer, on every backend; the
// fold is rebuilt when a mask changes in place; a hook that does not declare
// what it derives sends the block down the layer-by-layer path, where it runs.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { fromArray, manualSeed, noGrad, randn, type Tensor } from '@kiln/core';
import { Conv2d, derivingPreHook, type Module } from '@kiln/nn';
import { resnet18, type BasicBlock, type ResNet } from '@kiln/resnet';
import { describeEachBackend, expectClose, webgpuStatus } from '@kiln/test-helpers';
import { randomizeBatchNorm } from './prune.helpers.js';

const webgpu = await webgpuStatus();
type Masked = { weight: Tensor; weight_orig: Tensor; weight_mask: Tensor };

function maskByHand(m: Module, mask: Tensor): void {
  const orig = (m as unknown as Masked).weight;
  delete (m as unknown as Partial<Masked>).weight;
  m.registerParameter('weight_orig', orig);
  m.registerBuffer('weight_mask', mask);
  m.registerForwardPreHook(
    derivingPreHook({
      tensorName: 'weight',
      derive: (mod) => (mod as unknown as Masked).weight_mask.mul((mod as unknown as Masked).weight_orig),
      sources: (mod) => [(mod as unknown as Masked).weight_orig, (mod as unknown as Masked).weight_mask],
    }),
  );
}

// Fused and layer-by-layer logits differ only by float32 rounding of
// (W*s)*x vs s*(W*x) through 20 convs: logits are O(1), so 1e-4 holds with
// a wide margin (measured ~1e-6) while any unmasked weight moves them by O(0.1).
const FUSED_ATOL = 1e-4;

describeEachBackend('pruned resnet18: fused path uses the effective weight', webgpu, (device) => {
  let model: ResNet;
  let x: Tensor;
  const run = async (fused: boolean) => {
    model.setFuseInference(fused);
    const y = noGrad(() => model.call(x));
    const v = await y.toArray();
    y.dispose();
    return v as Float32Array;
  };

  beforeAll(async () => {
    manualSeed(11);
    model = resnet18({ numClasses: 10 });
    // Non-trivial BatchNorm statistics so the fold is not the identity.
    randomizeBatchNorm(model);
    await model.to(device);
    model.eval();
    x = randn([1, 3, 32, 32], { device });
  });
  afterAll(() => {
    model?.releaseFolded();
    model?.dispose();
    x?.dispose();
  });

  it('masked convs: fused logits equal layer-by-layer logits and differ from the dense model', async () => {
    const dense = await run(true);
    let i = 0;
    for (const m of model.modules()) {
      if (!(m instanceof Conv2d)) continue;
      const n = m.weight.numel();
      // A different sparse pattern per conv (about a third zeroed).
      maskByHand(m, fromArray(Array.from({ length: n }, (_, k) => ((k * 7 + i) % 3 === 0 ? 0 : 1)), m.weight.shape, { device }));
      i++;
    }
    const fused = await run(true);
    const unfused = await run(false);
    model.setFuseInference(true);
    expect((model.layer1.at(0) as BasicBlock).usesFusedPath(x)).toBe(false); // grad mode, parameters require grad
    expect(noGrad(() => (model.layer1.at(0) as BasicBlock).usesFusedPath(x))).toBe(true);
    expectClose(fused, unfused, { rtol: 0, atol: FUSED_ATOL }, 'fused vs unfused');
    const moved = Math.max(...fused.map((v, k) => Math.abs(v - dense[k]!)));
    expect(moved).toBeGreaterThan(100 * FUSED_ATOL);
  }, 300_000);

  it('changing a mask in place rebuilds the fold: fused logits follow and still equal layer by layer', async () => {
    const before = await run(true);
    const conv = (model.layer2.at(1) as BasicBlock).conv2 as unknown as Masked;
    noGrad(() => conv.weight_mask.narrow(0, 0, 64).zero_());
    const fused = await run(true);
    const unfused = await run(false);
    expectClose(fused, unfused, { rtol: 0, atol: FUSED_ATOL }, 'fused vs unfused after the mask changed');
    expect(Math.max(...fused.map((v, k) => Math.abs(v - before[k]!)))).toBeGreaterThan(100 * FUSED_ATOL);
  }, 300_000);

  it('a forward hook that declares nothing forces the layer-by-layer path, where it runs', async () => {
    const block = model.layer3.at(0) as BasicBlock;
    let calls = 0;
    const h = block.conv1.registerForwardHook(() => {
      calls++;
    });
    expect(noGrad(() => block.usesFusedPath(x))).toBe(false);
    await run(true);
    expect(calls).toBe(1);
    h.remove();
    expect(noGrad(() => block.usesFusedPath(x))).toBe(true);
  }, 300_000);
});
