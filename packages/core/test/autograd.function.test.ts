// The custom Function's contract beyond its numbers (those are checked
// against PyTorch in tests/autograd.function.parity.test.ts): what ctx
// reports, the errors PyTorch raises for a malformed backward, version
// checks on saved tensors, hooks and retainGrad on several outputs,
// retainGraph, and that nothing leaks. Runs on every backend.
import { afterAll, expect, it } from 'vitest';
import * as kiln from '@kiln/core';
import { AutogradError, Function, FunctionCtx, ShapeError, type Tensor } from '@kiln/core';
import { describeBackends } from '@kiln/test-helpers';

const ran = new Map<string, number>();
afterAll(() => console.log(`custom Function behaviour: ${[...ran].map(([b, n]) => `${n} cases on ${b}`).join(', ')} (exact checks)`));
const values = async (t: Tensor) => Array.from(await t.toArray());

class Square extends Function {
  static override forward(ctx: FunctionCtx, x: Tensor): Tensor {
    ctx.saveForBackward(x);
    return x.mul(x);
  }
  static override backward(ctx: FunctionCtx, g: Tensor): Tensor {
    return g.mul(ctx.savedTensors[0]!).mul(2);
  }
}

class Split extends Function {
  static override forward(_ctx: FunctionCtx, x: Tensor): Tensor[] {
    return [x.mul(2), x.mul(3)];
  }
  static override backward(_ctx: FunctionCtx, a: Tensor, b: Tensor): Tensor {
    return a.mul(2).add(b.mul(3));
  }
}

await describeBackends('custom Function behaviour', (device) => {
  const leaf = (data: number[]) => kiln.fromArray(data, [data.length], { device, requiresGrad: true });
  const test = (name: string, fn: () => Promise<void> | void) => it(name, async () => {
    ran.set(device, (ran.get(device) ?? 0) + 1);
    await fn();
  });

  test('records one node named after the class, and needsInputGrad follows requiresGrad and grad mode', async () => {
    let seen: readonly boolean[] = [];
    class Probe extends Function {
      static override forward(ctx: FunctionCtx, x: Tensor, y: Tensor, _k: number): Tensor {
        seen = ctx.needsInputGrad;
        return x.add(y);
      }
      static override backward(_ctx: FunctionCtx, g: Tensor): (Tensor | null)[] {
        return [g, null, null];
      }
    }
    const x = leaf([1, 2]);
    const c = kiln.fromArray([3, 4], [2], { device });
    const y = Probe.apply(x, c, 5);
    expect(seen).toEqual([true, false, false]);
    expect(y.gradFn?.name).toBe('ProbeBackward');
    expect(y.gradFn?.nextFunctions).toEqual(['AccumulateGrad', null, null]);
    const z = kiln.noGrad(() => Probe.apply(x, c, 5));
    expect(seen).toEqual([false, false, false]);
    expect(z.requiresGrad).toBe(false);
    y.sum().backward();
    expect(await values(x.grad!)).toEqual([1, 1]);
  });

  test('the forward runs without recording, and frees what it neither returns nor saves', () => {
    const before = kiln.memory().numTensors;
    let inForward = true;
    class Intermediates extends Function {
      static override forward(ctx: FunctionCtx, x: Tensor): Tensor {
        inForward = kiln.isGradEnabled();
        const h = x.exp().add(1);
        ctx.saveForBackward(h);
        return h.log();
      }
      static override backward(ctx: FunctionCtx, g: Tensor): Tensor {
        const [h] = ctx.savedTensors;
        return g.mul(h!.sub(1)).div(h!);
      }
    }
    const x = leaf([0.5, -1]);
    const y = Intermediates.apply(x);
    expect(inForward).toBe(false);
    // x and y only: exp(x) and exp(x)+1 are freed (the saved one lives on inside the node).
    expect(kiln.memory().numTensors).toBe(before + 2);
    const s = y.sum();
    s.backward();
    for (const t of [x.grad!, x, y, s]) t.dispose();
    expect(kiln.memory().numTensors).toBe(before);
  });

  test('a backward with the wrong number of gradients, a wrong shape, or a gradient for a number is an error naming the function', () => {
    class TooFew extends Function {
      static override forward(_c: FunctionCtx, x: Tensor, y: Tensor): Tensor { return x.add(y); }
      static override backward(_c: FunctionCtx, g: Tensor): Tensor { return g; }
    }
    class BadShape extends Function {
      static override forward(_c: FunctionCtx, x: Tensor): Tensor { return x.sum(); }
      static override backward(_c: FunctionCtx, g: Tensor): Tensor { return g; }
    }
    class GradForNumber extends Function {
      static override forward(_c: FunctionCtx, x: Tensor, _k: number): Tensor { return x.mul(2); }
      static override backward(_c: FunctionCtx, g: Tensor): Tensor[] { return [g.mul(2), g]; }
    }
    const x = leaf([1, 2]);
    expect(() => TooFew.apply(x, x).sum().backward()).toThrow(/TooFewBackward returned an incorrect number of gradients \(expected 2, got 1\)/);
    expect(() => BadShape.apply(x).backward()).toThrow(ShapeError);
    expect(() => BadShape.apply(x).backward()).toThrow(/invalid gradient at index 0 - got \[\] but expected shape compatible with \[2\]/);
    expect(() => GradForNumber.apply(x, 3).sum().backward()).toThrow(/position 1, but the corresponding forward input was not a tensor/);
    expect(() => new FunctionCtx([]).savedTensors).toThrow(AutogradError);
  });

  test('modifying a saved tensor in place before backward is caught, as for built-in ops', () => {
    const x = leaf([1, 2, 3]);
    const h = x.mul(1);
    const y = Square.apply(h);
    h.add_(1);
    expect(() => y.sum().backward()).toThrow(/modified by an inplace operation/);
  });

  test('several outputs: backward gets zeros for an unused output, hooks and retainGrad work per output', async () => {
    const x = leaf([1, -2]);
    const [a, b] = Split.apply(x);
    expect(a!.gradFn).not.toBe(b!.gradFn);
    const hooked: number[][] = [];
    b!.registerHook((g) => void g.toArray().then((v) => hooked.push(Array.from(v))));
    a!.retainGrad();
    a!.mul(10).sum().backward();
    expect(await values(x.grad!)).toEqual([20, 20]);
    expect(await values(a!.grad!)).toEqual([10, 10]);
    // b got no gradient, so its hook did not run and backward saw zeros for it.
    expect(hooked).toEqual([]);
    x.grad!.zero_();
    const [c, d] = Split.apply(x);
    d!.registerHook((g) => g.mul(-1));
    c!.add(d!).sum().backward();
    expect(await values(x.grad!)).toEqual([2 - 3, 2 - 3]);
  });

  test('markNonDifferentiable: that output does not require grad, the others do', () => {
    class WithMask extends Function {
      static override forward(ctx: FunctionCtx, x: Tensor): Tensor[] {
        const m = x.gt(0).to('float32');
        ctx.markNonDifferentiable(m);
        return [x.mul(m), m];
      }
      static override backward(_c: FunctionCtx, g: Tensor, gm: Tensor): Tensor {
        expect(gm.shape).toEqual(g.shape);
        return g;
      }
    }
    const [y, m] = WithMask.apply(leaf([1, -1]));
    expect(y!.requiresGrad).toBe(true);
    expect(m!.requiresGrad).toBe(false);
  });

  test('an input returned as is keeps its own identity and history; retainGraph allows a second backward', async () => {
    class Identity extends Function {
      static override forward(_c: FunctionCtx, x: Tensor): Tensor { return x; }
      static override backward(_c: FunctionCtx, g: Tensor): Tensor { return g; }
    }
    const x = leaf([1, 2]);
    const y = Identity.apply(x);
    expect(y).not.toBe(x);
    expect(x.isLeaf).toBe(true);
    const s = Square.apply(y).sum();
    s.backward(undefined, { retainGraph: true });
    s.backward();
    expect(await values(x.grad!)).toEqual([4, 8]);
    expect(() => s.backward()).toThrow(/second time/);
  });

  test('a gradient handed back from savedTensors is copied, so freeing the node cannot free it', async () => {
    class PassSaved extends Function {
      static override forward(ctx: FunctionCtx, x: Tensor): Tensor {
        ctx.saveForBackward(x.mul(0).add(7));
        return x.mul(1);
      }
      static override backward(ctx: FunctionCtx): Tensor { return ctx.savedTensors[0]!; }
    }
    const x = leaf([1, 2]);
    PassSaved.apply(x).sum().backward();
    expect(await values(x.grad!)).toEqual([7, 7]);
  });
});
