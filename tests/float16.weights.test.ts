// fp16 weights stay fp16 on load when asked ({ float16: 'keep' }), against
// the files PyTorch wrote (tests/reference/gen_resnet_io.py): torch.save of
// a half() resnet18 subset, and the dtype zoo as safetensors. The kept
// tensors are float16 with exactly the bytes PyTorch stored (sha256 of the
// file's bytes, from PyTorch); integer tensors still become int32; loaded
// into a half() model on every backend, each parameter is float16 with the
// file's values, at 2 bytes per element, with no float32 copy on the way.
import { afterAll, expect, it } from 'vitest';
import * as kiln from '@kiln/core';
import { BatchNorm2d, Conv2d, Module, loadSafetensors, saveSafetensors } from '@kiln/nn';
import { loadPth, loadWeights, readSafetensors, readWeights } from '@kiln/resnet';
import { describeEachBackend, webgpuStatus } from './helpers/env.js';
import { describeWithReference, refBytes, refJson, sha256, type ExpectedTensor } from '../packages/resnet/test/helpers/reference.js';

type Expected = { files: Record<string, Record<string, ExpectedTensor>> };
const webgpu = await webgpuStatus();

/** ResNet18's stem under torchvision's names (conv1, bn1): the fp16 file's first keys, cheap to build on the CPU backend. */
class Stem extends Module {
  conv1: Conv2d;
  bn1: BatchNorm2d;
  constructor(device: string) {
    super();
    this.conv1 = new Conv2d(3, 64, 7, { stride: 2, padding: 3, bias: false, device });
    this.bn1 = new BatchNorm2d(64, { device });
  }
  override forward(x: kiln.Tensor): kiln.Tensor {
    return this.bn1.call(this.conv1.call(x));
  }
}
const ran = new Map<string, number>();
afterAll(() => console.log(`float16 weights: ${[...ran].map(([b, n]) => `${n} cases on ${b}`).join(', ')} (bytes exactly PyTorch's)`));

describeWithReference('float16 weights stay float16 on load', () => {
  const expected = refJson<Expected>('weights/expected.json').files;
  const fp16 = 'resnet18_subset_fp16.pth';

  it(".pth: loadPth and readWeights with { float16: 'keep' } give float16 tensors holding PyTorch's bytes; int64 still int32", () => {
    const want = expected[fp16]!;
    const bytes = refBytes(`weights/${fp16}`);
    for (const read of [loadPth(bytes, { float16: 'keep' }).stateDict, readWeights(bytes, { float16: 'keep' })]) {
      expect([...read.keys()]).toEqual(Object.keys(want));
      for (const [key, t] of read) {
        const w = want[key]!;
        expect(t.shape, key).toEqual(w.shape);
        if (w.dtype === 'float16') {
          expect(t.dtype, key).toBe('float16');
          expect(sha256(t.data as Uint16Array), key).toBe(w.sha256);
        } else {
          expect(t.dtype, key).toBe(w.dtype === 'int64' ? 'int32' : w.dtype);
        }
      }
    }
    // The default is unchanged: float16 widens to float32.
    expect(readWeights(bytes).get('conv1.weight')!.dtype).toBe('float32');
  });

  it(".safetensors: readSafetensors with { float16: 'keep' } keeps F16 as float16 (PyTorch's bytes), still widens BF16/F64", () => {
    const want = expected['dtypes.safetensors']!;
    const read = readSafetensors(refBytes('weights/dtypes.safetensors'), { float16: 'keep' }).tensors;
    expect(read.get('f16')!.dtype).toBe('float16');
    expect(sha256(read.get('f16')!.data as Uint16Array)).toBe(want['f16']!.sha256);
    expect(read.get('bf16')!.dtype).toBe('float32');
    expect(read.get('f64')!.dtype).toBe('float32');
  });

  describeEachBackend('into a model', webgpu, (device) => {
    it(`loadWeights(model.half(), fp16 .pth, { float16: 'keep' }): float16 parameters and buffers with the file's values, 2 bytes each`, async () => {
      ran.set(device, (ran.get(device) ?? 0) + 1);
      const bytes = refBytes(`weights/${fp16}`);
      const file = readWeights(bytes, { float16: 'keep' });
      const model = new Stem(device).half();
      try {
        const result = await loadWeights(model, bytes, { float16: 'keep', strict: false });
        expect(result.missingKeys).toEqual([]);
        const state = model.stateDict();
        expect(Object.keys(state).length).toBe(6);
        for (const [key, p] of Object.entries(state)) {
          const t = file.get(key)!;
          if (t.dtype !== 'float16') continue;
          expect(p.dtype, key).toBe('float16');
          // Every float16 value is exact in float32: equal values are equal bits (the file holds no NaN).
          expect(Array.from(await p.toArray()), key).toEqual(Array.from(kiln.bitsToFloat32('float16', t.data as Uint16Array)));
        }
      } finally {
        model.dispose();
      }
    });

    it("loadSafetensors(..., { float16: 'keep' }) round-trips a float16 state dict as float16", async () => {
      ran.set(device, (ran.get(device) ?? 0) + 1);
      const w = kiln.randn([3, 5], { device, generator: new kiln.Generator(3) }).half();
      const bytes = await saveSafetensors({ w });
      const kept = loadSafetensors(bytes, { device, float16: 'keep' });
      const wide = loadSafetensors(bytes, { device });
      try {
        expect(kept['w']!.dtype).toBe('float16');
        expect(wide['w']!.dtype).toBe('float32');
        expect(Array.from(await kept['w']!.toArray())).toEqual(Array.from(await w.toArray()));
      } finally {
        for (const t of [w, kept['w']!, wide['w']!]) t.dispose();
      }
    });
  });
});
