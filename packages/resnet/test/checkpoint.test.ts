// ResNet18's checkpoint option on every backend: per-stage and per-block
// checkpointing give the plain training step's loss, gradients and
// BatchNorm running statistics bit for bit (the recomputation repeats the
// same float32 ops, and BatchNorm skips its update while recomputing), and
// hold fewer bytes between forward and backward (stage < block < none).
import { afterAll, expect, it } from 'vitest';
import { crossEntropy, manualSeed, memory, noGrad, randn, tensor, tidy, type Tensor } from '@kiln/core';
import { resnet18, type CheckpointMode } from '@kiln/resnet';
import { describeBackends } from '@kiln/test-helpers';

const MODES: CheckpointMode[] = ['none', 'stage', 'block'];
// One parameter from the stem, every stage and the head, and BatchNorm state from the first and last stage.
const PARAMS = ['conv1.weight', 'layer1.0.conv1.weight', 'layer2.0.downsample.0.weight', 'layer3.1.bn2.weight', 'layer4.1.conv2.weight', 'fc.weight'];
const BUFFERS = ['layer1.0.bn1.running_mean', 'layer1.0.bn1.running_var', 'layer4.1.bn2.running_var', 'layer4.1.bn2.num_batches_tracked'];
const lines: string[] = [];
afterAll(() => console.log(`resnet18 checkpoint option: ${lines.join('; ')}`));

await describeBackends('resnet18 checkpoint option', (device) => {
  it('stage and block checkpointing reproduce the plain step exactly and keep fewer activation bytes', async () => {
    const x = randn([2, 3, 16, 16], { device });
    const y = tensor([3, 7], { dtype: 'int32', device });
    const results = new Map<CheckpointMode, { loss: number; held: number; values: Map<string, number[]> }>();
    manualSeed(5);
    const model = resnet18({ numClasses: 10, device }).train();
    // One model for every mode: its buffers go back to the initial ones, its gradients to none, between runs.
    const initial = Object.entries(model.stateDict()).filter(([k]) => !k.endsWith('weight') && !k.endsWith('bias')).map(([k, t]) => [k, t.clone()] as const);
    for (const mode of MODES) {
      model.checkpointMode = mode;
      const sd0 = model.stateDict();
      noGrad(() => initial.forEach(([k, t]) => (sd0[k] as Tensor).copy_(t)));
      model.zeroGrad();
      const base = memory(device).bytesInUse;
      const loss = tidy(() => crossEntropy(model.call(x), y));
      const held = memory(device).bytesInUse - base;
      loss.backward();
      const sd = model.stateDict();
      const named = new Map(model.namedParameters());
      const values = new Map<string, number[]>();
      for (const k of PARAMS) values.set(`${k}.grad`, Array.from(await named.get(k)!.grad!.toArray()));
      for (const k of BUFFERS) values.set(k, Array.from(await (sd[k] as Tensor).toArray()));
      results.set(mode, { loss: (await loss.toArray())[0]!, held, values });
      loss.dispose();
    }
    model.dispose();
    for (const [, t] of initial) t.dispose();
    const plain = results.get('none')!;
    for (const mode of ['stage', 'block'] as const) {
      const r = results.get(mode)!;
      expect(r.loss, `${mode}: loss`).toBe(plain.loss);
      for (const [k, v] of plain.values) expect(r.values.get(k), `${mode}: ${k}`).toEqual(v);
    }
    expect(plain.values.get('layer4.1.bn2.num_batches_tracked')).toEqual([1]);
    const [none, stage, block] = MODES.map((m) => results.get(m)!.held);
    expect(stage!).toBeLessThan(block!);
    expect(block!).toBeLessThan(none!);
    lines.push(`${device}: bytes held after forward none ${none}, block ${block} (${(100 * (1 - block! / none!)).toFixed(0)}% less), stage ${stage} (${(100 * (1 - stage! / none!)).toFixed(0)}% less)`);
    x.dispose();
    y.dispose();
  });
});
