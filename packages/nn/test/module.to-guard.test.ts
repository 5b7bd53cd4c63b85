// Module.to() is async (a move from WebGPU awaits readbacks). While it runs,
// some tensors are on the old device and some on the new one: call() on the
// model or any submodule must throw a clear error instead of computing with
// mixed devices, and a second to() must not start. Runs on a second CPU
// backend registered under another name, so it needs no GPU.
import { describe, expect, it } from 'vitest';
import { cpuBackend, KilnError, randn, registerBackend, type Backend } from '@kiln/core';
import { Linear, ReLU, Sequential } from '@kiln/nn';

const OTHER = 'cpu-moved';
registerBackend(Object.create(cpuBackend, { name: { value: OTHER } }) as Backend);

describe('Module.to() in flight', () => {
  it('call() on the model or a submodule throws until to() settles; afterwards it runs on the new device', async () => {
    const model = new Sequential(new Linear(4, 8), new ReLU(), new Linear(8, 2));
    const x = randn([3, 4]);
    const moving = model.to(OTHER);
    expect(() => model.call(x)).toThrow(KilnError);
    expect(() => model.call(x)).toThrow(/Sequential is being moved to 'cpu-moved' by to\(\), which has not finished: await model\.to\('cpu-moved'\)/);
    const head = model.children()[2] as Linear;
    expect(() => head.call(randn([3, 8]))).toThrow(/Linear is being moved to 'cpu-moved'/);
    await expect(model.to('cpu')).rejects.toThrow(/Module\.to: Sequential is already being moved to 'cpu-moved'/);
    expect(await moving).toBe(model);
    for (const p of model.parameters()) expect(p.device).toBe(OTHER);
    const y = model.call(await x.toDevice(OTHER));
    expect(y.device).toBe(OTHER);
    expect(y.shape).toEqual([3, 2]);
    await model.to('cpu');
    expect(model.call(x).device).toBe('cpu');
  });

  it('a failed move releases the guard', async () => {
    const model = new Linear(2, 2);
    await expect(model.to('no-such-device')).rejects.toThrow(/no backend named 'no-such-device'/);
    expect(model.call(randn([1, 2])).shape).toEqual([1, 2]);
  });
});
