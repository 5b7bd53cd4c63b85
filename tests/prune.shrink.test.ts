// Channel pruning that shrinks ResNet18, on every backend: pruneInnerChannels
// masks 30% of each BasicBlock's inner channels (lnStructured dim 0 on conv1
// plus bn1's weight and bias), shrinkInnerChannels removes them (conv1
// outputs, bn1, conv2 inputs). The shrunk model gives the masked model's
// logits (fused and layer by layer), has the expected smaller convs and
// parameter count, round-trips through a state dict, and trains.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { manualSeed, noGrad, randn, tensor, tidy, type Tensor } from '@kiln/core';
import { CrossEntropyLoss, optim, prune } from '@kiln/nn';
import { innerWidths, pruneInnerChannels, resnet18, shrinkInnerChannels, withInnerWidths, type BasicBlock, type ResNet } from '@kiln/resnet';
import { describeEachBackend, expectClose, webgpuStatus } from '@kiln/test-helpers';
import { randomizeBatchNorm } from './prune.helpers.js';

const webgpu = await webgpuStatus();
/** Lets vitest's worker answer its RPC between long synchronous CPU-backend passes. */
const yieldToVitest = () => new Promise((r) => setImmediate(r));
// The shrunk convs sum the same nonzero products as the masked ones, minus
// exact zeros, in another order: logits O(1) agree to float32 rounding
// through 20 convs (measured ~1e-6); 1e-4 is far below what one dropped
// nonzero channel would change (O(0.1)).
const ATOL = 1e-4;

/** A seeded resnet18 (10 classes) with non-trivial BatchNorm statistics, on `device`, eval mode. */
async function seededResnet(device: string): Promise<ResNet> {
  manualSeed(21);
  const model = resnet18({ numClasses: 10 });
  randomizeBatchNorm(model);
  await model.to(device);
  return model.eval();
}

describeEachBackend('shrinking resnet18 inner channels by 30%', webgpu, (device) => {
  let model: ResNet;
  let x: Tensor;
  let masked: Float32Array;
  let params = 0;
  const logits = async (fused: boolean) => {
    model.setFuseInference(fused);
    const y = noGrad(() => model.call(x));
    const v = (await y.toArray()) as Float32Array;
    y.dispose();
    model.setFuseInference(true);
    await yieldToVitest();
    return v;
  };

  beforeAll(async () => {
    model = await seededResnet(device);
    x = randn([2, 3, 32, 32], { device });
    params = model.parameters().reduce((n, p) => n + p.numel(), 0);
    await pruneInnerChannels(model, 0.3);
    masked = await logits(true);
  }, 300_000);
  afterAll(() => {
    model?.releaseFolded();
    model?.dispose();
    x?.dispose();
  });

  it('removes round(0.3 * planes) inner channels per block: smaller convs, fewer parameters, same logits as the masked model', async () => {
    const r = await shrinkInnerChannels(model);
    const planes = [64, 64, 128, 128, 256, 256, 512, 512];
    expect(Object.values(r.widths)).toEqual(planes.map((p) => p - Math.round(0.3 * p)));
    expect(innerWidths(model)).toEqual(r.widths);
    const b = model.layer2.at(0) as BasicBlock;
    expect(b.conv1.weight.shape).toEqual([90, 64, 3, 3]);
    expect(b.bn1.numFeatures).toBe(90);
    expect(b.conv2.weight.shape).toEqual([128, 90, 3, 3]);
    expect(prune.isPruned(model)).toBe(false);
    // Each block loses (in*9 + 2 + out*9) parameters per removed channel.
    const inPlanes = [64, 64, 64, 128, 128, 256, 256, 512];
    const removed = planes.reduce((n, p, i) => n + Math.round(0.3 * p) * (inPlanes[i]! * 9 + 2 + p * 9), 0);
    expect(r.parametersBefore).toBe(params);
    expect(r.parametersAfter).toBe(params - removed);
    for (const fused of [true, false]) expectClose(await logits(fused), masked, { rtol: 0, atol: ATOL }, `shrunk vs masked (${fused ? 'fused' : 'unfused'})`);
  }, 300_000);

  it('round-trips through a state dict into withInnerWidths(resnet18(), innerWidths(sd))', async () => {
    const sd = model.stateDict();
    const keys = Object.keys(sd);
    expect(keys.slice(0, 8)).toEqual(['conv1.weight', 'bn1.weight', 'bn1.bias', 'bn1.running_mean', 'bn1.running_var', 'bn1.num_batches_tracked', 'layer1.0.conv1.weight', 'layer1.0.bn1.weight']);
    const fresh = withInnerWidths(resnet18({ numClasses: 10, device }), innerWidths(sd)).eval();
    fresh.loadStateDict(sd);
    for (const t of Object.values(sd)) t.dispose();
    const y = noGrad(() => fresh.call(x));
    expectClose((await y.toArray()) as Float32Array, await logits(true), { rtol: 0, atol: 0 }, 'reloaded vs shrunk');
    y.dispose();
    fresh.dispose();
  }, 300_000);

  it('trains: three SGD steps on one batch lower the loss', async () => {
    model.train();
    const opt = new optim.SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
    const labels = tensor([1, 4], { dtype: 'int32', device });
    const lossFn = new CrossEntropyLoss();
    const losses: number[] = [];
    for (let i = 0; i < 3; i++) {
      opt.zeroGrad();
      const loss = tidy(() => lossFn.call(model.call(x), labels));
      loss.backward();
      opt.step();
      losses.push(await loss.item());
      loss.dispose();
      await yieldToVitest();
    }
    expect(losses[2]!).toBeLessThan(losses[0]!);
    expect(losses.every(Number.isFinite)).toBe(true);
    opt.zeroGrad();
    opt.dispose();
    labels.dispose();
    model.eval();
  }, 300_000);

  it('a zeroed conv1 channel whose bn1 is not zeroed is refused (it would still output a constant)', async () => {
    await prune.lnStructured((model.layer1.at(0) as BasicBlock).conv1, 'weight', 2, 2, 0);
    await expect(shrinkInnerChannels(model)).rejects.toThrow(/channel \d+ of layer1\.0\.conv1 is zero but layer1\.0\.bn1/);
  }, 300_000);
});
