// ResNet18's checkpoint option on every backend: per-stage and per-block
// checkpointing (each with the stem as a segment of its own) give the plain
// training step's loss, the gradient of every parameter and every
// BatchNorm buffer bit for bit (the recomputation repeats the same float32
// ops, and BatchNorm skips its update while recomputing, so the stem's bn1
// counts one batch too), and hold fewer bytes between forward and backward
// (stage < block < none). Under 'stage' what is held is the segments'
// inputs and the head's, nothing of the stem: below the stem's conv1 output
// alone (before the stem was checkpointed it kept conv1's output for bn1
// and the relu_ output, two of those).
import { afterAll, expect, it } from 'vitest';
import { crossEntropy, manualSeed, memory, noGrad, randn, tensor, tidy, type Tensor } from '@kiln/core';
import { resnet18, type CheckpointMode } from '@kiln/resnet';
import { describeBackends } from '@kiln/test-helpers';

const MODES: CheckpointMode[] = ['none', 'stage', 'block'];
const BATCH = 2;
const SIZE = 32;
const lines: string[] = [];
afterAll(() => console.log(`resnet18 checkpoint option: ${lines.join('; ')}`));

/** Index of the first element whose bits differ (-1: identical); NaN payloads compare by bits too. */
function firstBitDifference(a: Float32Array | Int32Array, b: Float32Array | Int32Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return i;
  return -1;
}

await describeBackends('resnet18 checkpoint option', (device) => {
  it('stage and block checkpointing (stem included) reproduce the plain step exactly and keep fewer activation bytes', async () => {
    const x = randn([BATCH, 3, SIZE, SIZE], { device });
    const y = tensor([3, 7], { dtype: 'int32', device });
    const results = new Map<CheckpointMode, { loss: number; held: number; values: Map<string, Float32Array | Int32Array> }>();
    manualSeed(5);
    const model = resnet18({ numClasses: 10, device }).train();
    // One model for every mode: its buffers go back to the initial ones, its gradients to none, between runs.
    const paramNames = new Set(model.namedParameters().map(([k]) => k));
    const initial = Object.entries(model.stateDict()).filter(([k]) => !paramNames.has(k)).map(([k, t]) => [k, t.clone()] as const);
    expect(initial.some(([k]) => k === 'bn1.running_mean')).toBe(true);
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
      const values = new Map<string, Float32Array | Int32Array>();
      for (const [k, p] of model.namedParameters()) {
        expect(p.grad, `${mode}: ${k}.grad`).not.toBeNull();
        values.set(`${k}.grad`, (await p.grad!.toArray()) as Float32Array);
      }
      for (const [k] of initial) values.set(k, (await (sd[k] as Tensor).toArray()) as Float32Array | Int32Array);
      results.set(mode, { loss: (await loss.toArray())[0]!, held, values });
      loss.dispose();
    }
    model.dispose();
    for (const [, t] of initial) t.dispose();
    const plain = results.get('none')!;
    expect(plain.values.size).toBe(paramNames.size + initial.length);
    for (const mode of ['stage', 'block'] as const) {
      const r = results.get(mode)!;
      expect(r.loss, `${mode}: loss`).toBe(plain.loss);
      for (const [k, v] of plain.values) {
        const i = firstBitDifference(r.values.get(k)!, v);
        expect(i, `${mode}: ${k} differs from the plain step at element ${i}: got ${r.values.get(k)![i]}, expected ${v[i]}`).toBe(-1);
      }
    }
    // Every BatchNorm, the stem's included, counted the batch once.
    for (const [k, v] of plain.values) if (k.endsWith('num_batches_tracked')) expect(Array.from(v), k).toEqual([1]);
    const [none, stage, block] = MODES.map((m) => results.get(m)!.held);
    expect(stage!).toBeLessThan(block!);
    expect(block!).toBeLessThan(none!);
    // conv1's output, [B, 64, H/2, W/2] float32: the stem keeps none of it (it kept two before).
    const conv1Out = BATCH * 64 * (SIZE / 2) ** 2 * 4;
    expect(stage!, `'stage' holds ${stage} bytes after forward: expected below conv1's output (${conv1Out} bytes), the stem checkpointed`).toBeLessThan(conv1Out);
    // What remains is the four stage inputs (the stem's output and layer1..3's, which the stage checkpoints keep) and the head:
    // fc's input [B, 512] and the logits-sized tensors of the loss, less than layer3's output [B, 256, H/16, W/16].
    const stageInputs = BATCH * 64 * (SIZE / 4) ** 2 * 4 * (1 + 1 + 1 / 2 + 1 / 4);
    expect(stage! - stageInputs, `'stage' holds ${stage} bytes after forward, the stage inputs ${stageInputs}`).toBeGreaterThanOrEqual(0);
    expect(stage! - stageInputs, `'stage' holds ${stage} bytes after forward, the stage inputs ${stageInputs}: the rest should be the head's`).toBeLessThan(BATCH * 256 * (SIZE / 16) ** 2 * 4);
    lines.push(`${device}: bytes held after forward at ${BATCH}x3x${SIZE}x${SIZE}: none ${none}, block ${block} (${(100 * (1 - block! / none!)).toFixed(0)}% less), stage ${stage} (${(100 * (1 - stage! / none!)).toFixed(0)}% less; conv1's output ${conv1Out})`);
    x.dispose();
    y.dispose();
  });
});
