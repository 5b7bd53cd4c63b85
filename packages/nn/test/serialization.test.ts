// State dicts through safetensors, and whole models between backends.
import { existsSync, readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { randn } from '@kiln/core';
import { SafetensorsError, loadSafetensors, saveSafetensors } from '@kiln/nn';
import { describeEachBackend, referenceRequired, webgpuStatus } from '@kiln/test-helpers';
import { SmallCNN } from './small-cnn.js';

const webgpu = await webgpuStatus();

describeEachBackend('nn serialization', webgpu, (device) => {
  it('saveSafetensors -> loadSafetensors -> loadStateDict reproduces the model', async () => {
    const a = new SmallCNN();
    await a.to(device);
    a.call(randn([2, 3, 8, 8], { device }));
    const bytes = await saveSafetensors(a.stateDict(), { metadata: { format: 'pt' } });
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + Number(new DataView(bytes.buffer).getBigUint64(0, true)))));
    expect(header['bn1.num_batches_tracked']).toEqual({ dtype: 'I32', shape: [], data_offsets: expect.any(Array) });
    expect(header.__metadata__).toEqual({ format: 'pt' });
    const b = new SmallCNN();
    await b.to(device);
    b.loadStateDict(loadSafetensors(bytes, { device }));
    const sa = a.stateDict();
    const sb = b.stateDict();
    for (const k of Object.keys(sa)) expect(Array.from(await sb[k]!.toArray()), k).toEqual(Array.from(await sa[k]!.toArray()));
  });

  it('model.to() moves every parameter and buffer and keeps requiresGrad', async () => {
    const m = new SmallCNN();
    m.conv1.requiresGrad_(false);
    const before = await m.fc.weight.toArray();
    await m.to(device);
    expect([...m.parameters(), ...m.buffers()].every((t) => t.device === device)).toBe(true);
    expect(m.conv1.weight.requiresGrad).toBe(false);
    expect(m.fc.weight.requiresGrad).toBe(true);
    await m.to('cpu');
    expect(Array.from(await m.fc.weight.toArray())).toEqual(Array.from(before));
  });
});

it('loadSafetensors rejects malformed files with the reason', () => {
  expect(() => loadSafetensors(new Uint8Array(4))).toThrow(SafetensorsError);
  const json = new TextEncoder().encode('{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}');
  const bytes = new Uint8Array(8 + json.length + 4);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(json.length), true);
  bytes.set(json, 8);
  expect(() => loadSafetensors(bytes)).toThrow(/tensor 'w'/);
});

// Written by gen_resnet_io.py: without it this skips, or fails when reference outputs are required.
const pythonFile = new URL('../../../tests/.cache/reference/resnet_io/weights/resnet18_subset.safetensors', import.meta.url);
it.skipIf(!existsSync(pythonFile) && !referenceRequired)('reads the safetensors file PyTorch tensors were written to (I64 num_batches_tracked)', () => {
  const file = pythonFile;
  const sd = loadSafetensors(new Uint8Array(readFileSync(file)));
  expect(sd['bn1.num_batches_tracked']!.dtype).toBe('int32');
  expect(sd['conv1.weight']!.shape).toEqual([64, 3, 7, 7]);
});
