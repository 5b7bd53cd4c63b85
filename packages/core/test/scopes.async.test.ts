// Kiln's scopes (tidy, noGrad, enableGrad) are synchronous by rule: their
// state is module-level, so an async body would share it with every task
// that runs while it waits. This file proves the rule is enforced (a body
// that returns a promise or thenable is rejected with a KilnError naming the
// scope, after the scope has been closed and its state restored) and that
// the documented async pattern (synchronous scopes, `using`/dispose() across
// awaits) is correct under interleaved concurrent tasks.
import { describe, expect, it } from 'vitest';
import * as kiln from '@kiln/core';
import { KilnError, type Tensor } from '@kiln/core';

const device = 'cpu';
const tick = () => new Promise<void>((resolve) => setTimeout(resolve, 0));
const counts = () => {
  const m = kiln.memory(device);
  return { numTensors: m.numTensors, bytesInUse: m.bytesInUse };
};

describe('tidy rejects a body that returns a promise', () => {
  it('throws a KilnError naming tidy and disposes what the body created before its first await', async () => {
    const before = counts();
    let made: Tensor | null = null;
    let error: unknown;
    try {
      kiln.tidy(async () => {
        made = kiln.ones([4], { device }).mul(2);
        await tick();
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(KilnError);
    expect((error as KilnError).op).toBe('tidy');
    expect((error as Error).message).toMatch(/returned a Promise.*cannot span an await.*synchronous tidy/);
    expect(made!.isDisposed).toBe(true);
    expect(counts()).toEqual(before);
    await tick();
  });

  it('rejects any thenable, not only a native Promise', () => {
    const thenable = { then: (resolve: (v: number) => void) => resolve(1) };
    expect(() => kiln.tidy(() => thenable)).toThrow(KilnError);
  });

  it('leaves the scope stack intact: an enclosing tidy still owns and frees its own tensors', () => {
    const before = counts();
    let outer: Tensor | null = null;
    const kept = kiln.tidy(() => {
      outer = kiln.ones([3], { device }).add(1);
      expect(() => kiln.tidy(async () => kiln.zeros([2], { device }))).toThrow(/tidy: the function returned a Promise/);
      expect(outer.isDisposed, 'the rejected inner scope must not free the outer scope\'s tensors').toBe(false);
      return outer.mul(3);
    });
    expect(outer!.isDisposed).toBe(true);
    expect(kept.isDisposed).toBe(false);
    kept.dispose();
    expect(counts()).toEqual(before);
  });

  it('a body whose tail fails after the rejection does not surface as an unhandled rejection', async () => {
    // vitest fails the run on an unhandled rejection, so this test would fail if the handler were missing.
    expect(() => kiln.tidy(async () => {
      const t = kiln.ones([2], { device });
      await tick();
      t.add(1); // t was disposed when tidy returned: this throws DisposedError inside the abandoned promise
    })).toThrow(KilnError);
    await tick();
    await tick();
  });
});

describe('noGrad and enableGrad reject a body that returns a promise', () => {
  it('noGrad throws a KilnError naming noGrad with grad mode already restored', async () => {
    expect(kiln.isGradEnabled()).toBe(true);
    let error: unknown;
    let inside: boolean | null = null;
    try {
      kiln.noGrad(async () => {
        inside = kiln.isGradEnabled();
        await tick();
      });
    } catch (e) {
      error = e;
    }
    expect(inside).toBe(false);
    expect((error as KilnError).op).toBe('noGrad');
    expect((error as Error).message).toMatch(/grad mode is one global flag/);
    expect(kiln.isGradEnabled()).toBe(true);
    await tick();
    expect(kiln.isGradEnabled()).toBe(true);
  });

  it('enableGrad inside noGrad throws and restores the enclosing no-grad mode', () => {
    kiln.noGrad(() => {
      expect(() => kiln.enableGrad(async () => undefined)).toThrow(/enableGrad: the function returned a Promise/);
      expect(kiln.isGradEnabled()).toBe(false);
    });
    expect(kiln.isGradEnabled()).toBe(true);
  });
});

describe('the documented async pattern under interleaved tasks', () => {
  it('eight concurrent tasks with synchronous scopes and `using` across awaits: right values, right grad mode, nothing leaked', async () => {
    const before = counts();
    const x = kiln.arange(0, 64, 1, { device, dtype: 'float32' }).requiresGrad_();
    const modesSeen: boolean[] = [];
    const task = async (k: number): Promise<void> => {
      for (let step = 0; step < 5; step++) {
        // Each task records a graph in one step and not in the next; the
        // other tasks, resumed in between, must see grad mode on.
        const recorded = step % 2 === 0;
        using y = recorded ? kiln.tidy(() => x.mul(k).add(step)) : kiln.noGrad(() => kiln.tidy(() => x.mul(k).add(step)));
        expect(y.requiresGrad).toBe(recorded);
        modesSeen.push(kiln.isGradEnabled());
        await tick();
        modesSeen.push(kiln.isGradEnabled());
        const values = await y.toArray();
        for (let i = 0; i < 64; i++) expect(values[i]).toBe(i * k + step);
        expect(y.isDisposed, `task ${k} step ${step}: another task's scope disposed this task's tensor`).toBe(false);
      }
    };
    await Promise.all(Array.from({ length: 8 }, (_, k) => task(k + 1)));
    expect(modesSeen.length).toBe(8 * 5 * 2);
    expect(modesSeen.every((m) => m)).toBe(true);
    x.dispose();
    expect(counts()).toEqual(before);
  });
});
