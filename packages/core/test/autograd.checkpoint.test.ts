// checkpoint()'s behaviour beyond its numbers (those are checked against
// PyTorch in tests/autograd.checkpoint.parity.test.ts): it keeps no
// activations (fewer bytes held between forward and backward), recomputes
// once per backward, restores the RNG so dropout repeats its mask (the
// gradients equal the plain run's exactly), rejects a forward that changes
// between runs, and leaks nothing. Runs on every backend.
import { afterAll, expect, it } from 'vitest';
import * as kiln from '@kiln/core';
import { AutogradError, type Tensor } from '@kiln/core';
import { describeBackends } from '@kiln/test-helpers';

const ran = new Map<string, number>();
afterAll(() => console.log(`checkpoint behaviour: ${[...ran].map(([b, n]) => `${n} cases on ${b}`).join(', ')} (exact checks)`));

await describeBackends('checkpoint behaviour', (device) => {
  const test = (name: string, fn: () => Promise<void> | void) => it(name, async () => {
    ran.set(device, (ran.get(device) ?? 0) + 1);
    await fn();
  });
  const weights = () => kiln.randn([64, 64], { device, generator: new kiln.Generator(3) }).mul(0.1).requiresGrad_();
  /** Four tanh layers with dropout: every layer saves its output and its mask. */
  const deep = (w: Tensor, p = 0.3) => (x: Tensor): Tensor => {
    let h = x;
    for (let i = 0; i < 4; i++) h = kiln.dropout(h.matmul(w).tanh(), p, true);
    return h;
  };

  test('dropout inside: the gradients equal the un-checkpointed run exactly (the RNG state is restored for the recomputation)', async () => {
    const x = kiln.randn([8, 64], { device, generator: new kiln.Generator(1) }).requiresGrad_();
    const w = weights();
    const run = (ckpt: boolean, preserveRngState = true) => {
      kiln.manualSeed(42);
      const y = ckpt ? kiln.checkpoint(deep(w), x, { preserveRngState }) : deep(w)(x);
      const s = y.square().sum();
      s.backward();
      const out = { gx: x.grad!, gw: w.grad! };
      x.grad = null;
      w.grad = null;
      s.dispose();
      return { ...out, yt: y };
    };
    const plain = run(false);
    const ckpt = run(true);
    expect(Array.from(await ckpt.yt.toArray())).toEqual(Array.from(await plain.yt.toArray()));
    expect(Array.from(await ckpt.gx.toArray())).toEqual(Array.from(await plain.gx.toArray()));
    expect(Array.from(await ckpt.gw.toArray())).toEqual(Array.from(await plain.gw.toArray()));
    // Without the restore the recomputation draws new masks: the gradients are wrong, which is why it is the default.
    const unrestored = run(true, false);
    expect(Array.from(await unrestored.gw.toArray())).not.toEqual(Array.from(await plain.gw.toArray()));
    for (const r of [plain, ckpt, unrestored]) for (const t of [r.yt, r.gx, r.gw]) t.dispose();
    x.dispose();
    w.dispose();
  });

  test('keeps no activations: fewer bytes are held between forward and backward, fn runs once more in backward, and everything is freed after', () => {
    const x = kiln.randn([32, 64], { device, generator: new kiln.Generator(2) });
    const w = weights();
    const base = kiln.memory(device);
    let calls = 0;
    const f = (h: Tensor) => {
      calls++;
      return deep(w, 0)(h);
    };
    const held = (ckpt: boolean) => {
      // Both in tidy, so only what autograd keeps outlives the forward.
      const y = ckpt ? kiln.checkpoint(f, x) : kiln.tidy(() => f(x));
      const bytes = kiln.memory(device).bytesInUse - base.bytesInUse;
      const s = y.sum();
      s.backward();
      w.grad!.dispose();
      w.grad = null;
      y.dispose();
      s.dispose();
      return bytes;
    };
    const plainBytes = held(false);
    calls = 0;
    const ckptBytes = held(true);
    // No input requires grad, yet the weight got its gradient (the non-reentrant rule) and fn ran twice.
    expect(calls).toBe(2);
    // Plain: the four tanh outputs of 32x64 float32 (saved by tanh and the next matmul; the last is the output);
    // checkpointed: the output only.
    expect(plainBytes).toBe(4 * 32 * 64 * 4);
    expect(ckptBytes).toBe(32 * 64 * 4);
    expect(kiln.memory(device).numTensors).toBe(base.numTensors);
    expect(kiln.memory(device).bytesInUse).toBe(base.bytesInUse);
    x.dispose();
    w.dispose();
  });

  test('parameters get gradients when no input requires grad; with grad mode off it simply runs', async () => {
    const w = kiln.fromArray([2], [1], { device, requiresGrad: true });
    const x = kiln.fromArray([3], [1], { device });
    const y = kiln.checkpoint((h: Tensor) => h.mul(w).square(), x);
    y.sum().backward();
    // d/dw (x w)^2 = 2 x^2 w = 36
    expect(Array.from(await w.grad!.toArray())).toEqual([36]);
    const z = kiln.noGrad(() => kiln.checkpoint((h: Tensor) => h.mul(w), x));
    expect(z.requiresGrad).toBe(false);
  });

  test('a forward that saves different tensors when recomputed is an error, not a wrong gradient', () => {
    const x = kiln.fromArray([1, 2], [2], { device, requiresGrad: true });
    let first = true;
    const y = kiln.checkpoint((h: Tensor) => {
      const r = first ? h.exp().exp() : h.exp();
      first = false;
      return r;
    }, x);
    expect(() => y.sum().backward()).toThrow(AutogradError);
  });

  test('nested checkpoints and retainGraph: a second backward reuses the recomputation and accumulates', async () => {
    const x = kiln.fromArray([0.5, -1], [2], { device, requiresGrad: true });
    const inner = (h: Tensor) => h.sin().mul(h);
    const y = kiln.checkpoint((h: Tensor) => kiln.checkpoint(inner, h.exp()).square(), x);
    const s = y.sum();
    s.backward(undefined, { retainGraph: true });
    const once = Array.from(await x.grad!.toArray());
    s.backward();
    const twice = Array.from(await x.grad!.toArray());
    expect(twice).toEqual(once.map((v) => Math.fround(2 * v)));
    const e = [0.5, -1].map(Math.exp);
    const expected = e.map((u, i) => 2 * (Math.sin(u) * u) * (Math.cos(u) * u + Math.sin(u)) * e[i]!);
    once.forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 4));
  });
});
