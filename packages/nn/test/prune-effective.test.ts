// Module.effectiveTensor(): a forward pre-hook that declares the tensor it
// derives (pruning's weight = weight_orig * weight_mask) makes that value
// what every path sees, cached while its sources are unchanged, re-derived
// when they change, never leaked per forward and freed by dispose().
import { describe, expect, it } from 'vitest';
import { fromArray, manualSeed, memory, noGrad, ones, randn, tensor, tidy, type Tensor } from '@kiln/core';
import { Conv2d, Linear, derivingPreHook, hooksAllowFastPath, type Module } from '@kiln/nn';

/** Values with -0 written as 0 (a masked entry is 0 * w, which is -0 for negative w). */
const plain = (a: ArrayLike<number>) => Array.from(a, (v) => v + 0);

type Masked = { weight: Tensor; weight_orig: Tensor; weight_mask: Tensor };

/** What prune does, by hand: weight_orig is the old Parameter, weight_mask a buffer, weight derived. */
function maskByHand(m: Module, mask: Tensor): void {
  const orig = (m as unknown as Masked).weight;
  delete (m as unknown as Partial<Masked>).weight;
  m.registerParameter('weight_orig', orig);
  m.registerBuffer('weight_mask', mask);
  m.registerForwardPreHook(
    derivingPreHook({
      tensorName: 'weight',
      derive: (mod) => (mod as unknown as Masked).weight_mask.mul((mod as unknown as Masked).weight_orig),
      sources: (mod) => [(mod as unknown as Masked).weight_orig, (mod as unknown as Masked).weight_mask],
    }),
  );
}

describe('effective tensor', () => {
  it('is the masked weight, and is the attribute forward reads', () => {
    manualSeed(3);
    const lin = new Linear(3, 2);
    const w = lin.weight.dataSync().slice();
    maskByHand(lin, tensor([[1, 0, 1], [0, 1, 0]]));
    const eff = lin.effectiveTensor('weight')!;
    expect(plain(eff.dataSync())).toEqual([w[0], 0, w[2], 0, w[4], 0]);
    expect((lin as unknown as Masked).weight).toBe(eff);
    expect(lin.effectiveTensor('bias')).toBe(lin.bias);
    expect(lin.effectiveTensor('nothing')).toBeNull();
    expect(hooksAllowFastPath(lin)).toBe(true);
    lin.registerForwardHook(() => undefined);
    expect(hooksAllowFastPath(lin)).toBe(false);
  });

  it('is cached while weight_orig and weight_mask are unchanged, re-derived when either changes in place or is replaced', () => {
    const lin = new Linear(4, 3);
    maskByHand(lin, ones([3, 4]));
    const m = lin as unknown as Masked;
    const a = noGrad(() => lin.effectiveTensor('weight')!);
    expect(noGrad(() => lin.effectiveTensor('weight'))).toBe(a);
    noGrad(() => m.weight_mask.select(0, 1).zero_());
    const b = noGrad(() => lin.effectiveTensor('weight')!);
    expect(b).not.toBe(a);
    expect(a.isDisposed).toBe(true); // the module owned it
    expect(plain(b.dataSync()).slice(4, 8)).toEqual([0, 0, 0, 0]);
    noGrad(() => m.weight_orig.mul_(2));
    const c = noGrad(() => lin.effectiveTensor('weight')!);
    expect(c).not.toBe(b);
    lin.registerBuffer('weight_mask', tensor([[0, 0, 0, 0], [1, 1, 1, 1], [1, 1, 1, 1]]));
    const d = noGrad(() => lin.effectiveTensor('weight')!);
    expect(plain(d.dataSync()).slice(0, 4)).toEqual([0, 0, 0, 0]);
  });

  it('gradients reach weight_orig, zero where masked', () => {
    const lin = new Linear(3, 2);
    maskByHand(lin, tensor([[1, 0, 1], [0, 1, 1]]));
    lin.call(randn([5, 3])).sum().backward();
    const g = (lin as unknown as Masked).weight_orig.grad!.dataSync();
    expect(plain([g[1]!, g[3]!])).toEqual([0, 0]);
    expect([g[0], g[2], g[4], g[5]].every((v) => v !== 0)).toBe(true);
  });

  it('100 forwards (eval and training) leave memory() flat; dispose() frees the derived weight too', () => {
    const before = memory('cpu').numTensors;
    const conv = new Conv2d(3, 4, 3, { padding: 1 });
    maskByHand(conv, fromArray(Array.from({ length: 4 * 27 }, (_, i) => (i % 3 === 0 ? 0 : 1)), [4, 3, 3, 3]));
    const x = randn([2, 3, 6, 6]);
    const run = (grad: boolean) => {
      if (grad) {
        const loss = tidy(() => conv.call(x).sum());
        loss.backward();
        loss.dispose();
        conv.zeroGrad();
      } else noGrad(() => conv.call(x).dispose());
    };
    for (const grad of [false, true]) {
      run(grad);
      const after1 = memory('cpu');
      for (let i = 0; i < 100; i++) run(grad);
      const after100 = memory('cpu');
      expect({ grad, n: after100.numTensors, bytes: after100.bytesInUse }).toEqual({ grad, n: after1.numTensors, bytes: after1.bytesInUse });
    }
    x.dispose();
    conv.dispose();
    expect(memory('cpu').numTensors).toBe(before);
  });
});
