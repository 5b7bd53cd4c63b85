// Autograd behaviour that is about errors, flags and graph structure rather
// than numbers (the numbers are checked against PyTorch in
// autograd.grads.test.ts): retainGraph, grad modes, detach, retainGrad,
// isLeaf, gradFn inspection, hooks, in-place rules and the version counter,
// backward's argument checks. Runs on every backend.
import { afterAll, expect, it } from 'vitest';
import * as kiln from '@kiln/core';
import { AutogradError, KilnError, ShapeError, type Tensor } from '@kiln/core';
import { describeBackends } from '@kiln/test-helpers';

const ran = new Map<string, number>();
afterAll(() => console.log(`autograd behaviour: ${[...ran].map(([b, n]) => `${n} cases on ${b}`).join(', ')} (exact checks: errors, flags, graph structure)`));

/** Values of t as a plain array. */
const values = async (t: Tensor) => Array.from(await t.toArray());

await describeBackends('autograd behaviour', (device) => {
  const leaf = (data: number[], shape = [data.length]) => kiln.fromArray(data, shape, { device, requiresGrad: true });
  const test = (name: string, fn: () => Promise<void> | void) => it(name, async () => {
    ran.set(device, (ran.get(device) ?? 0) + 1);
    await fn();
  });

  test('a second backward through a freed graph throws a clear error; retainGraph allows it and accumulates', async () => {
    const x = leaf([0.5, -1, 2]);
    const y = x.exp().sum();
    y.backward();
    expect(() => y.backward()).toThrow(AutogradError);
    expect(() => y.backward()).toThrow(/second time.*retainGraph/);

    const x2 = leaf([0.5, -1, 2]);
    const y2 = x2.exp().sum();
    y2.backward(undefined, { retainGraph: true });
    const once = await values(x2.grad!);
    y2.backward();
    const twice = await values(x2.grad!);
    expect(twice).toEqual(once.map((v) => Math.fround(v + v)));
  });

  test('accumulation updates the existing .grad tensor in place (as PyTorch), so a held reference stays valid', async () => {
    const x = leaf([1, 2, 3]);
    x.mul(2).sum().backward();
    const held = x.grad!;
    x.mul(3).sum().backward();
    expect(held.isDisposed, 'the first .grad tensor was disposed by the second backward').toBe(false);
    expect(x.grad).toBe(held);
    expect(await values(held)).toEqual([5, 5, 5]);
  });

  test('noGrad and enableGrad nest, restore the mode on return and on throw, and reject an async body with the mode restored', async () => {
    const x = leaf([1, 2]);
    expect(kiln.isGradEnabled()).toBe(true);
    kiln.noGrad(() => {
      expect(kiln.isGradEnabled()).toBe(false);
      expect(x.mul(2).requiresGrad).toBe(false);
      kiln.enableGrad(() => {
        expect(kiln.isGradEnabled()).toBe(true);
        const y = x.mul(3);
        expect(y.requiresGrad).toBe(true);
        expect(y.gradFn).not.toBeNull();
        kiln.noGrad(() => expect(x.mul(4).requiresGrad).toBe(false));
        expect(kiln.isGradEnabled()).toBe(true);
      });
      expect(kiln.isGradEnabled()).toBe(false);
      expect(() => kiln.enableGrad(() => {
        throw new Error('boom');
      })).toThrow('boom');
      expect(kiln.isGradEnabled()).toBe(false);
    });
    expect(kiln.isGradEnabled()).toBe(true);
    expect(() => kiln.noGrad(async () => {
      await Promise.resolve();
    })).toThrow(/noGrad: the function returned a Promise/);
    expect(kiln.isGradEnabled()).toBe(true);
  });

  test('detach shares storage, leaves the graph and stops the gradient', async () => {
    const x = leaf([1, 2, 3]);
    const y = x.mul(2);
    const d = y.detach();
    expect(d.requiresGrad).toBe(false);
    expect(d.isLeaf).toBe(true);
    expect(d.gradFn).toBeNull();
    d.add_(1); // shares y's storage: y sees it
    expect(await values(y)).toEqual([3, 5, 7]);
    const z = x.mul(d).sum();
    z.backward();
    expect(await values(x.grad!)).toEqual([3, 5, 7]); // d is a constant: dz/dx = d
  });

  test('retainGrad fills .grad of a non-leaf; without it a non-leaf has no .grad', async () => {
    const x = leaf([0.25, 0.5]);
    const kept = x.mul(3);
    const notKept = x.mul(5);
    kept.retainGrad();
    kept.add(notKept).sum().backward();
    expect(await values(kept.grad!)).toEqual([1, 1]);
    expect(notKept.grad).toBeNull();
    expect(() => kiln.ones([2], { device }).retainGrad()).toThrow(AutogradError);
  });

  test('isLeaf: user tensors and results of ops on non-grad tensors are leaves; recorded results are not', () => {
    const x = leaf([1, 2]);
    const c = kiln.ones([2], { device });
    expect(x.isLeaf).toBe(true);
    expect(c.isLeaf).toBe(true);
    expect(c.mul(2).isLeaf).toBe(true);
    expect(x.mul(2).isLeaf).toBe(false);
    expect(kiln.noGrad(() => x.mul(2)).isLeaf).toBe(true);
    expect(() => x.mul(2).requiresGrad_(false)).toThrow(/leaf/);
    expect(() => kiln.ones([2], { device, dtype: 'int32' }).requiresGrad_()).toThrow(AutogradError);
  });

  test('gradFn names the op PyTorch-style and links to its inputs', () => {
    const x = leaf([1, 2]);
    const w = leaf([3, 4]);
    const prod = x.mul(w);
    const total = prod.sum();
    expect(prod.gradFn!.name).toBe('MulBackward0');
    expect(total.gradFn!.name).toBe('SumBackward0');
    expect(total.gradFn!.next).toHaveLength(1);
    expect(total.gradFn!.next[0]).toEqual({ node: prod.gradFn });
    const leaves = prod.gradFn!.next.map((e) => (e && 'leaf' in e ? e.leaf : null));
    expect(leaves[0]).toBe(x);
    expect(leaves[1]).toBe(w);
    // An operand that needs no gradient has no edge.
    const half = x.mul(kiln.ones([2], { device }));
    expect(half.gradFn!.next[1]).toBeNull();
  });

  test('registerHook needs a tensor that requires grad; remove() detaches the hook', async () => {
    expect(() => kiln.ones([2], { device }).registerHook(() => undefined)).toThrow(AutogradError);
    const x = leaf([1, 2]);
    let calls = 0;
    const handle = x.registerHook((g) => {
      calls++;
      return g.mul(10);
    });
    x.sum().backward();
    expect(calls).toBe(1);
    expect(await values(x.grad!)).toEqual([10, 10]);
    handle.remove();
    x.sum().backward();
    expect(calls).toBe(1);
    expect(await values(x.grad!)).toEqual([11, 11]);
  });

  test('a hook returning a gradient of the wrong shape is rejected', () => {
    const x = leaf([1, 2, 3]);
    x.registerHook(() => kiln.ones([2], { device }));
    expect(() => x.mul(2).sum().backward()).toThrow(ShapeError);
  });

  test('an in-place op on a leaf that requires grad throws naming the op; under noGrad it is allowed', async () => {
    const x = leaf([1, 2]);
    expect(() => x.add_(1)).toThrow(AutogradError);
    expect(() => x.mul_(2)).toThrow(/mul_: .*leaf/);
    expect(await values(x)).toEqual([1, 2]);
    kiln.noGrad(() => x.add_(1));
    expect(await values(x)).toEqual([2, 3]);
  });

  test('modifying a saved tensor in place, then backward, throws (version counter)', () => {
    // exp saves its output: changing the output invalidates exp's backward.
    const x = leaf([0.1, 0.2]);
    const y = x.exp();
    const v0 = y.version;
    y.add_(1);
    expect(y.version).toBe(v0 + 1);
    expect(() => y.sum().backward()).toThrow(/modified by an inplace operation/);

    // mul saves its inputs: changing one invalidates mul's backward.
    const a = leaf([1, 2]).mul(1);
    const w = leaf([3, 4]);
    const b = a.mul(w);
    a.mul_(2);
    expect(() => b.sum().backward()).toThrow(AutogradError);
  });

  test('an in-place op on a non-leaf is recorded: its gradient flows through', async () => {
    const x = leaf([1, 2, 3]);
    const y = x.mul(2);
    y.mul_(3); // y = 6x
    y.sum().backward();
    expect(await values(x.grad!)).toEqual([6, 6, 6]);
  });

  test('backward checks its arguments: non-scalar needs a gradient of the same shape; no grad -> error', async () => {
    const x = leaf([1, 2, 3, 4], [2, 2]);
    const y = x.mul(2);
    expect(() => y.backward()).toThrow(/only for scalar outputs/);
    expect(() => y.backward(kiln.ones([4], { device }))).toThrow(ShapeError);
    expect(() => kiln.ones([1], { device }).backward()).toThrow(/does not require grad/);
    y.backward(kiln.fromArray([1, 0, 2, 3], [2, 2], { device }));
    expect(await values(x.grad!)).toEqual([2, 0, 4, 6]);
  });

  test('a leaf disposed before backward makes backward throw instead of writing into freed memory', () => {
    const x = leaf([1, 2]);
    const y = x.mul(x).sum();
    x.dispose();
    expect(() => y.backward()).toThrow(KilnError);
  });
});
