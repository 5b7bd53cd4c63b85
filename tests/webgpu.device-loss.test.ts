// A WebGPU device can be lost mid-run (device.destroy(), a driver reset, a
// GPU unplugged). Then the next op or readback must throw a BackendError
// that says the device was lost (never hang, never a wrong answer),
// every tensor of that device must throw when used, and initWebGPU() must
// give a new, working backend. Loss is simulated two ways: the real
// device.destroy(), and a device whose `lost` promise the test resolves
// (what a driver reset looks like) while a wait on the queue never ends.
import { expect, it } from 'vitest';
import * as kiln from '@kiln/core';
import { BackendError, type Backend, type Tensor } from '@kiln/core';
import { Conv2d, CrossEntropyLoss, Flatten, Linear, ReLU, Sequential, optim } from '@kiln/nn';
import { initWebGPU, WebGPUBackend } from '@kiln/kernels';
import { acquireDevice } from '../packages/kernels/src/device.js';
import { describeWebGPU } from '@kiln/test-helpers';

const LOST = /the WebGPU device was lost \(reason '[a-z]+': .*\); its tensors are gone\. Call initWebGPU\(\)/;

/** A small CNN and one SGD step on fixed data, all on 'webgpu'. */
async function trainer() {
  const model = new Sequential(new Conv2d(1, 4, 3), new ReLU(), new Flatten(), new Linear(4 * 6 * 6, 3));
  await model.to('webgpu');
  const opt = new optim.SGD(model.parameters(), { lr: 0.05 });
  const lossFn = new CrossEntropyLoss();
  const x = kiln.randn([2, 1, 8, 8], { device: 'webgpu', generator: new kiln.Generator(1) });
  const y = kiln.tensor([0, 2], { dtype: 'int32', device: 'webgpu' });
  const step = async (): Promise<number> => {
    const loss = kiln.tidy(() => {
      opt.zeroGrad();
      const l = lossFn.call(model.call(x), y) as Tensor;
      l.backward();
      opt.step();
      return l;
    });
    try {
      return await loss.item() as number;
    } finally {
      loss.dispose();
    }
  };
  return { model, x, step };
}

await describeWebGPU('WebGPU device loss', () => {
  it('device.destroy() mid training loop: the next step throws "device was lost", old tensors throw, initWebGPU() trains again', { timeout: 30_000 }, async () => {
    const first = await initWebGPU();
    const { model, x, step } = await trainer();
    for (let i = 0; i < 3; i++) expect(Number.isFinite(await step())).toBe(true);

    first.device.destroy();
    const error = await step().then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(BackendError);
    expect((error as Error).message).toMatch(LOST);
    expect(first.isLost).toBe(true);
    // Every use of a tensor of the lost device throws the same way.
    expect(() => x.add(1)).toThrow(LOST);
    await expect(model.parameters()[0]!.toArray()).rejects.toThrow(LOST);
    await expect(kiln.getBackend('webgpu').sync()).rejects.toThrow(LOST);
    expect(() => kiln.ones([2], { device: 'webgpu' })).toThrow(LOST);

    const second = await initWebGPU();
    expect(second).not.toBe(first);
    expect(first.isDestroyed, 'the lost backend frees what it held').toBe(true);
    expect(kiln.getBackend('webgpu')).toBe(second);
    expect(() => x.add(1), 'a tensor of the lost device stays unusable').toThrow(BackendError);
    const fresh = kiln.ones([2, 1, 8, 8], { device: 'webgpu' });
    expect(() => fresh.add(x)).toThrow(/two 'webgpu' backends: one was replaced/);
    fresh.dispose();
    x.dispose();
    model.dispose();

    const again = await trainer();
    const losses: number[] = [];
    for (let i = 0; i < 3; i++) losses.push(await again.step());
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses[2]!, 'training on the new device makes progress').toBeLessThan(losses[0]!);
    again.x.dispose();
    again.model.dispose();
  });

  it('a lost-device promise that resolves: a wait that would never end rejects at once, ops and tensors throw', { timeout: 30_000 }, async () => {
    const { device, info, gpu } = await acquireDevice();
    let reportLoss!: (info: GPUDeviceLostInfo) => void;
    const lost = new Promise<GPUDeviceLostInfo>((resolve) => (reportLoss = resolve));
    let stall = false;
    const bind = (target: object, key: PropertyKey) => {
      const v = Reflect.get(target, key);
      return typeof v === 'function' ? v.bind(target) : v;
    };
    // The queue never reports finished work once stalled: only the loss can end a wait on it.
    const queue = new Proxy(device.queue, {
      get: (t, k) => (k === 'onSubmittedWorkDone' && stall ? () => new Promise(() => undefined) : bind(t, k)),
    });
    const simulated = new Proxy(device, { get: (t, k) => (k === 'lost' ? lost : k === 'queue' ? queue : bind(t, k)) });
    const backend = new WebGPUBackend(simulated, info);
    backend.keepAlive = gpu;
    const shared: Backend = kiln.getBackend('webgpu');
    kiln.registerBackend(backend);
    try {
      const t = kiln.ones([4], { device: 'webgpu' }).mul(3);
      expect(Array.from(await t.toArray())).toEqual([3, 3, 3, 3]);
      stall = true;
      const waiting = backend.sync();
      const started = performance.now();
      reportLoss({ reason: 'unknown', message: 'simulated driver reset' } as GPUDeviceLostInfo);
      await expect(waiting).rejects.toThrow(/the WebGPU device was lost \(reason 'unknown': simulated driver reset\)/);
      expect(performance.now() - started, 'the wait ends with the loss, not a timeout').toBeLessThan(5_000);
      expect(backend.isLost).toBe(true);
      expect(() => t.mul(2)).toThrow(LOST);
      await expect(t.toArray()).rejects.toThrow(LOST);
      expect(() => kiln.zeros([3], { device: 'webgpu' })).toThrow(/^full: the WebGPU device was lost/);
      t.dispose();
    } finally {
      kiln.registerBackend(shared);
      backend.destroy();
    }
  });
});
