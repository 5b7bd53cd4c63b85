// Deterministic memory: dispose / tidy / keep / `using` release exactly what
// they should and nothing else, a disposed tensor cannot be used (the error
// names the op), views keep their storage alive, and autograd's saved
// tensors are released by backward (or when the graph is dropped).
// memory() is the witness. Runs on every backend.
import { afterAll, expect, it } from 'vitest';
import * as kiln from '@kiln/core';
import { DisposedError, type Tensor } from '@kiln/core';
import { describeBackends } from '@kiln/test-helpers';

const ran = new Map<string, number>();
afterAll(() => console.log(`memory lifecycle: ${[...ran].map(([b, n]) => `${n} cases on ${b}`).join(', ')} (numTensors and bytesInUse compared exactly)`));

const F32 = 4;

await describeBackends('memory lifecycle', (device) => {
  const mem = () => kiln.memory(device);
  const test = (name: string, fn: () => Promise<void> | void) => it(name, async () => {
    ran.set(device, (ran.get(device) ?? 0) + 1);
    await fn();
  });

  test('dispose releases the tensor and its bytes at once; a second dispose is a no-op', () => {
    const before = mem();
    const t = kiln.ones([10, 10], { device });
    expect(mem().numTensors).toBe(before.numTensors + 1);
    expect(mem().bytesInUse).toBe(before.bytesInUse + 100 * F32);
    t.dispose();
    expect(t.isDisposed).toBe(true);
    expect(mem()).toMatchObject({ numTensors: before.numTensors, bytesInUse: before.bytesInUse });
    t.dispose();
    expect(mem()).toMatchObject({ numTensors: before.numTensors, bytesInUse: before.bytesInUse });
  });

  test('use after dispose throws a DisposedError naming the op', async () => {
    const t = kiln.ones([2, 3], { device });
    const w = kiln.ones([3, 3], { device });
    const img = kiln.ones([1, 1, 4, 4], { device });
    const k = kiln.ones([1, 1, 3, 3], { device });
    const labels = kiln.zeros([2], { device, dtype: 'int32' });
    const index = kiln.zeros([2, 1], { device, dtype: 'int32' });
    const cond = kiln.ones([2, 3], { device, dtype: 'bool' });
    t.dispose();
    img.dispose();
    const calls: [string, () => unknown][] = [
      ['add', () => t.add(1)],
      ['mul', () => w.mul(t)],
      ['exp', () => t.exp()],
      ['relu', () => t.relu()],
      ['clamp', () => t.clamp(0, 1)],
      ['sum', () => t.sum()],
      ['mean', () => t.mean(1)],
      ['max', () => t.max(1)],
      ['var', () => t.var(1)],
      ['softmax', () => t.softmax(1)],
      ['logSoftmax', () => t.logSoftmax(1)],
      ['logsumexp', () => t.logsumexp(1)],
      ['matmul', () => t.matmul(w)],
      ['reshape', () => t.reshape([6])],
      ['transpose', () => t.transpose(0, 1)],
      ['permute', () => t.permute(1, 0)],
      ['slice', () => t.slice(1, 0, 2)],
      ['expand', () => t.expand(2, 2, 3)],
      ['contiguous', () => t.contiguous()],
      ['clone', () => t.clone()],
      ['add_', () => t.add_(1)],
      ['cat', () => kiln.cat([w, t], 0)],
      ['gather', () => t.gather(1, index)],
      ['indexSelect', () => t.indexSelect(0, labels)],
      ['pad', () => kiln.pad(t, [1, 1])],
      ['where', () => kiln.where(cond, t, 0)],
      ['conv2d', () => kiln.conv2d(img, k)],
      ['maxPool2d', () => kiln.maxPool2d(img, 2)],
      ['avgPool2d', () => kiln.avgPool2d(img, 2)],
      ['linear', () => kiln.linear(t, w)],
      ['crossEntropy', () => kiln.crossEntropy(t, labels)],
    ];
    // Collect every wrong answer, so one run lists them all.
    const wrong: string[] = [];
    for (const [op, call] of calls) {
      try {
        call();
        wrong.push(`${op}: no error`);
      } catch (e) {
        if (!(e instanceof DisposedError)) wrong.push(`${op}: ${(e as Error).name} instead of DisposedError`);
        else if (!(e as Error).message.startsWith(`${op}:`)) wrong.push(`${op}: message "${(e as Error).message.slice(0, 40)}..."`);
      }
    }
    expect(wrong, 'ops whose use-after-dispose error is wrong').toEqual([]);
    await expect(t.toArray()).rejects.toThrow(DisposedError);
    await expect(t.toArray()).rejects.toThrow(/^toArray:/);
    for (const x of [w, k, labels, index, cond]) x.dispose();
  });

  test('a view keeps its storage alive after the base is disposed; the bytes go with the last holder', async () => {
    const before = mem();
    const base = kiln.fromArray([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], [3, 4], { device, dtype: 'float32' });
    const view = base.transpose(0, 1);
    const flat = base.reshape([12]);
    base.dispose();
    expect(mem().numTensors).toBe(before.numTensors + 2);
    expect(mem().bytesInUse).toBe(before.bytesInUse + 12 * F32);
    using c = view.contiguous();
    expect(Array.from(await c.toArray())).toEqual([0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
    view.dispose();
    expect(mem().bytesInUse).toBe(before.bytesInUse + 2 * 12 * F32); // flat's storage + c
    flat.dispose();
    expect(mem().bytesInUse).toBe(before.bytesInUse + 12 * F32); // c only
  });

  test('tidy disposes what the function made, except what it returns (arrays, objects) and keep()s', () => {
    const before = mem();
    const outside = kiln.ones([4], { device });
    let inner: Tensor | null = null;
    let kept: Tensor | null = null;
    const result = kiln.tidy(() => {
      const a = outside.mul(2);
      inner = a.add(1);
      kept = kiln.keep(a.mul(3));
      return { sum: inner.sum(), parts: [a.sub(1)] };
    });
    expect(inner!.isDisposed).toBe(true);
    expect(kept!.isDisposed).toBe(false);
    expect(outside.isDisposed).toBe(false);
    expect(result.sum.isDisposed).toBe(false);
    expect(result.parts[0]!.isDisposed).toBe(false);
    expect(mem().numTensors).toBe(before.numTensors + 4); // outside, kept, sum, parts[0]
    for (const t of [outside, kept!, result.sum, result.parts[0]!]) t.dispose();
    expect(mem()).toMatchObject({ numTensors: before.numTensors, bytesInUse: before.bytesInUse });
  });

  test('nested tidy hands a returned tensor to the outer scope, which disposes it unless returned again', () => {
    const before = mem().numTensors;
    let fromInner: Tensor | null = null;
    const out = kiln.tidy(() => {
      fromInner = kiln.tidy(() => kiln.ones([3], { device }).mul(2));
      expect(fromInner.isDisposed).toBe(false);
      return fromInner.add(1);
    });
    expect(fromInner!.isDisposed).toBe(true);
    expect(mem().numTensors).toBe(before + 1);
    out.dispose();
    expect(mem().numTensors).toBe(before);
  });

  test('tidy disposes its tensors when the function throws, and rejects an async function after disposing', async () => {
    const before = mem();
    expect(() => kiln.tidy(() => {
      kiln.ones([8], { device }).mul(2);
      throw new Error('inside tidy');
    })).toThrow('inside tidy');
    expect(mem()).toMatchObject({ numTensors: before.numTensors, bytesInUse: before.bytesInUse });
    let t: Tensor | null = null;
    expect(() => kiln.tidy(async () => {
      t = kiln.ones([5], { device }).mul(3);
      await Promise.resolve();
    })).toThrow(/tidy: the function returned a Promise/);
    expect(t!.isDisposed).toBe(true);
    expect(mem()).toMatchObject({ numTensors: before.numTensors, bytesInUse: before.bytesInUse });
  });

  test('`using` disposes at the end of the block', () => {
    const before = mem();
    let escaped: Tensor | null = null;
    {
      using t = kiln.ones([16], { device });
      escaped = t;
      expect(mem().numTensors).toBe(before.numTensors + 1);
    }
    expect(escaped!.isDisposed).toBe(true);
    expect(mem()).toMatchObject({ numTensors: before.numTensors, bytesInUse: before.bytesInUse });
  });

  test('saved tensors are released by backward: bytesInUse drops to what the leaves and grads hold', () => {
    const n = 1000;
    const x = kiln.randn([n], { device, generator: new kiln.Generator(1) }).requiresGrad_();
    const base = mem().bytesInUse;
    // exp saves its output, mul saves both inputs: the user's handles go, the graph keeps the storage.
    const loss = kiln.tidy(() => x.exp().mul(x.sin()).sum());
    const held = mem().bytesInUse - base;
    expect(held, 'the graph holds its saved activations').toBeGreaterThanOrEqual(2 * n * F32);
    loss.backward();
    // Left: x.grad (n floats) and the scalar loss.
    expect(mem().bytesInUse).toBe(base + n * F32 + F32);
    loss.dispose();
    x.grad!.dispose();
    x.grad = null;
    expect(mem().bytesInUse).toBe(base);
    x.dispose();
  });

  test('with retainGraph the saved tensors live until the graph output is disposed', () => {
    const n = 500;
    const x = kiln.randn([n], { device, generator: new kiln.Generator(2) }).requiresGrad_();
    const base = mem().bytesInUse;
    const loss = kiln.tidy(() => x.exp().mul(x.sin()).sum());
    const held = mem().bytesInUse - base;
    loss.backward(undefined, { retainGraph: true });
    expect(mem().bytesInUse).toBe(base + held + n * F32);
    loss.dispose();
    x.grad!.dispose();
    x.grad = null;
    expect(mem().bytesInUse, 'disposing the output frees the retained graph').toBe(base);
    x.dispose();
  });

  test('a graph dropped without backward frees its saved tensors with its output', () => {
    const x = kiln.randn([300], { device, generator: new kiln.Generator(3) }).requiresGrad_();
    const before = mem();
    const y = kiln.tidy(() => x.tanh().mul(x).relu());
    expect(mem().bytesInUse).toBeGreaterThan(before.bytesInUse + 300 * F32);
    y.dispose();
    expect(mem()).toMatchObject({ numTensors: before.numTensors, bytesInUse: before.bytesInUse });
    x.dispose();
  });

  test('backward leaves no tensor behind for an operand that needs no gradient', () => {
    const g = new kiln.Generator(4);
    const data = kiln.randn([2, 3], { device, generator: g });
    const w = kiln.randn([3, 4], { device, generator: g }).requiresGrad_();
    // First backward creates w.grad; later ones only accumulate into it.
    kiln.tidy(() => data.matmul(w).sum()).backward();
    const before = mem();
    for (let i = 0; i < 3; i++) {
      const loss = kiln.tidy(() => data.matmul(w).sum());
      loss.backward();
      loss.dispose();
    }
    expect(mem().numTensors, 'live tensors after 3 more backward passes').toBe(before.numTensors);
    expect(mem().bytesInUse, 'bytes after 3 more backward passes').toBe(before.bytesInUse);
    for (const t of [data, w.grad!, w]) t.dispose();
  });
});
