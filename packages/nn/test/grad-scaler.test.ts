// GradScaler's contract beyond the scale trajectory (checked against PyTorch
// in tests/amp.grad-scaler.parity.test.ts): PyTorch's defaults, its errors
// for calls out of order, unscale_ before clipping, the state dict under
// PyTorch's keys, and the disabled pass-through.
import { describe, expect, it } from 'vitest';
import * as kiln from '@kiln/core';
import { GradScaler, Linear, optim } from '@kiln/nn';

const setup = () => {
  const model = new Linear(2, 1, { device: 'cpu' });
  const opt = new optim.SGD(model.parameters(), { lr: 0.1 });
  const backward = (scaler: GradScaler, bad = false) => {
    opt.zeroGrad();
    kiln.tidy(() => {
      const x = kiln.fromArray([1, bad ? Infinity : 2], [1, 2]);
      scaler.scale(model.call(x).sum()).backward();
    });
  };
  return { model, opt, backward };
};

describe('GradScaler', () => {
  it("has PyTorch's defaults: scale 2^16, growth 2 every 2000 clean steps, backoff 0.5", () => {
    const s = new GradScaler();
    expect(s.getScale()).toBe(65536);
    expect([s.getGrowthFactor(), s.getBackoffFactor(), s.getGrowthInterval()]).toEqual([2, 0.5, 2000]);
    expect(s.stateDict()).toEqual({ scale: 65536, growth_factor: 2, backoff_factor: 0.5, growth_interval: 2000, _growth_tracker: 0 });
  });

  it('scale() multiplies by the scale; unscale_() divides the gradients back, so clipping sees true gradients', async () => {
    const { model, opt, backward } = setup();
    const scaler = new GradScaler({ initScale: 1024 });
    backward(scaler);
    expect(Array.from(await model.weight.grad!.toArray())).toEqual([1024, 2048]);
    await scaler.unscale_(opt);
    expect(Array.from(await model.weight.grad!.toArray())).toEqual([1, 2]);
    await scaler.step(opt);
    scaler.update();
  });

  it("calls out of order raise PyTorch's errors", async () => {
    const { opt, backward } = setup();
    const scaler = new GradScaler();
    expect(() => scaler.update()).toThrow(/no inf checks were recorded/);
    backward(scaler);
    await scaler.unscale_(opt);
    await expect(scaler.unscale_(opt)).rejects.toThrow(/unscale_\(\) has already been called on this optimizer since the last update\(\)/);
    await scaler.step(opt);
    await expect(scaler.step(opt)).rejects.toThrow(/step\(\) has already been called since the last update\(\)/);
    await expect(scaler.unscale_(opt)).rejects.toThrow(/unscale_\(\) is being called after step\(\)/);
    scaler.update();
    backward(scaler);
    await scaler.step(opt);
    scaler.update();
    expect(() => new GradScaler({ growthFactor: 1 })).toThrow(/growthFactor should be > 1/);
  });

  it('skips the step on an inf gradient and backs off; the state dict round-trips', async () => {
    const { model, opt, backward } = setup();
    const scaler = new GradScaler({ growthInterval: 1 });
    const w0 = Array.from(await model.weight.toArray());
    backward(scaler, true);
    expect(await scaler.step(opt)).toBeUndefined();
    scaler.update();
    expect(Array.from(await model.weight.toArray())).toEqual(w0);
    expect(scaler.getScale()).toBe(32768);
    backward(scaler);
    await scaler.step(opt);
    scaler.update();
    expect(Array.from(await model.weight.toArray())).not.toEqual(w0);
    expect(scaler.getScale()).toBe(65536);
    const other = new GradScaler();
    other.loadStateDict(scaler.stateDict());
    expect(other.stateDict()).toEqual(scaler.stateDict());
    scaler.update(8);
    expect(scaler.getScale()).toBe(8);
  });

  it('disabled: scale is the identity, step always steps, getScale is 1 and the state dict is empty', async () => {
    const { model, opt, backward } = setup();
    const scaler = new GradScaler({ enabled: false });
    const w0 = Array.from(await model.weight.toArray());
    backward(scaler, false);
    expect(Array.from(await model.weight.grad!.toArray())).toEqual([1, 2]);
    await scaler.step(opt);
    scaler.update();
    expect(Array.from(await model.weight.toArray())).not.toEqual(w0);
    expect(scaler.getScale()).toBe(1);
    expect(scaler.stateDict()).toEqual({});
  });
});
