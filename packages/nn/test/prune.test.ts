// prune's behaviour PyTorch users rely on, beyond the masks that
// tests/prune.parity.test.ts checks against PyTorch: what becomes of the
// Parameter, the buffer and the hook; optimizers; gradients; remove();
// amounts (fraction(1), 0, errors); Kiln's tie rule; composition only
// shrinking masks; globalUnstructured; custom methods; the sparsity report.
import { describe, expect, it } from 'vitest';
import { KilnError, fromArray, manualSeed, noGrad, ones, randn, tensor, type Tensor } from '@kiln/core';
import { BatchNorm2d, Conv2d, Linear, Module, isParameter, optim, prune, type Parameter } from '@kiln/nn';

type Pruned = { weight: Tensor; weight_orig: Tensor; weight_mask: Tensor };
const members = (m: Module) => m as unknown as Pruned;
const plain = (a: ArrayLike<number>) => Array.from(a, (v) => v + 0);

describe('prune: the re-parametrisation', () => {
  it('weight_orig is the original Parameter, weight_mask a float32 buffer, weight a plain tensor = mask * orig', async () => {
    manualSeed(1);
    const lin = new Linear(4, 3);
    const orig = lin.weight;
    await prune.l1Unstructured(lin, 'weight', 5);
    const p = members(lin);
    expect(p.weight_orig).toBe(orig);
    expect(isParameter(p.weight_orig)).toBe(true);
    expect(lin.namedParameters().map(([n]) => n)).toEqual(['bias', 'weight_orig']);
    expect(lin.namedBuffers().map(([n]) => n)).toEqual(['weight_mask']);
    expect(p.weight_mask.dtype).toBe('float32');
    expect(isParameter(p.weight)).toBe(false);
    const w = orig.dataSync();
    const m = p.weight_mask.dataSync();
    expect(plain(p.weight.dataSync())).toEqual(plain(Array.from(w, (v, i) => v * m[i]!)));
    expect(m.filter((v) => v === 0).length).toBe(5);
    expect(prune.isPruned(lin)).toBe(true);
    expect(Object.keys(lin.stateDict())).toEqual(['bias', 'weight_orig', 'weight_mask']);
  });

  it('an optimizer built before pruning keeps training weight_orig; gradients are zero where masked', async () => {
    manualSeed(2);
    const lin = new Linear(4, 3);
    const opt = new optim.SGD(lin.parameters(), { lr: 0.1 });
    await prune.l1Unstructured(lin, 'weight', 0.5);
    const p = members(lin);
    const before = p.weight_orig.dataSync().slice();
    opt.zeroGrad();
    lin.call(randn([6, 4])).pow(2).sum().backward();
    const g = p.weight_orig.grad!.dataSync();
    const m = p.weight_mask.dataSync();
    for (let i = 0; i < m.length; i++) if (m[i] === 0) expect(g[i]).toBe(0 * Math.sign(g[i]!));
    expect(g.some((v, i) => m[i] === 1 && v !== 0)).toBe(true);
    opt.step();
    const after = p.weight_orig.dataSync();
    for (let i = 0; i < m.length; i++) expect(after[i] === before[i]).toBe(m[i] === 0);
    // The next forward sees the updated orig through the hook.
    expect(plain(noGrad(() => lin.effectiveTensor('weight')!).dataSync())).toEqual(plain(Array.from(after, (v, i) => v * m[i]!)));
  });

  it('remove() makes weight the same Parameter object again, holding the masked values; orig, mask and hook are gone', async () => {
    const conv = new Conv2d(2, 4, 3);
    const orig = conv.weight;
    await prune.lnStructured(conv, 'weight', 2, 2, 0);
    const masked = members(conv).weight.dataSync().slice();
    prune.remove(conv, 'weight');
    expect(conv.weight).toBe(orig);
    expect(isParameter(conv.weight)).toBe(true);
    expect(plain(conv.weight.dataSync())).toEqual(plain(masked));
    expect(conv.namedParameters().map(([n]) => n)).toEqual(['bias', 'weight']);
    expect(conv.namedBuffers()).toEqual([]);
    expect(conv._forwardPreHooks.size).toBe(0);
    expect(prune.isPruned(conv)).toBe(false);
    expect(() => prune.remove(conv, 'weight')).toThrow(/Parameter 'weight' of module Conv2d has to be pruned before pruning can be removed/);
  });
});

describe('prune: amounts', () => {
  it('1 is a count of one entry; fraction(1) prunes everything; 0 leaves the mask as it was', async () => {
    const a = new Linear(4, 2);
    await prune.l1Unstructured(a, 'weight', 1);
    expect(members(a).weight_mask.dataSync().filter((v) => v === 0).length).toBe(1);
    await prune.l1Unstructured(a, 'weight', 0);
    expect(members(a).weight_mask.dataSync().filter((v) => v === 0).length).toBe(1);
    const b = new Linear(4, 2);
    await prune.l1Unstructured(b, 'weight', prune.fraction(1));
    expect([...members(b).weight_mask.dataSync()].every((v) => v === 0)).toBe(true);
  });

  it('fractions round half to even, as Python round()', async () => {
    for (const [f, want] of [[0.125, 2], [0.375, 8], [0.025, 0]] as const) {
      const lin = new Linear(5, 4); // 20 entries: 2.5 -> 2, 7.5 -> 8, 0.5 -> 0
      await prune.l1Unstructured(lin, 'weight', f);
      expect(members(lin).weight_mask.dataSync().filter((v) => v === 0).length).toBe(want);
    }
  });

  it('errors name the method, the amount and the size, and leave the module untouched', async () => {
    const conv = new Conv2d(2, 3, 3);
    await expect(prune.l1Unstructured(conv, 'weight', -1)).rejects.toThrow(/L1Unstructured: amount=-1 should either be a float in the range \[0, 1\] or a non-negative integer \(pruning a tensor of 54 prunable entries\)/);
    await expect(prune.l1Unstructured(conv, 'weight', 1.5)).rejects.toThrow(/amount=1.5 should either be a float/);
    await expect(prune.l1Unstructured(conv, 'weight', 55)).rejects.toThrow(/L1Unstructured: amount=55 should be smaller than the number of parameters to prune=54/);
    await expect(prune.lnStructured(conv, 'weight', 4, 2, 0)).rejects.toThrow(/LnStructured: amount=4 should be smaller than the number of parameters to prune=3/);
    await expect(prune.randomStructured(conv, 'bias', 1, 0)).rejects.toThrow(/Structured pruning can only be applied to multidimensional tensors/);
    await expect(prune.l1Unstructured(conv, 'nothing', 1)).rejects.toThrow(/Conv2d has no parameter 'nothing'/);
    await expect(prune.l1Unstructured(conv, 'weight', 1, { importanceScores: ones([3]) })).rejects.toThrow(/importance_scores should have the same shape/);
    expect(() => new prune.L1Unstructured({ amount: -2 })).toThrow(KilnError);
    expect(prune.isPruned(conv)).toBe(false);
    expect(conv.namedParameters().map(([n]) => n)).toEqual(['weight', 'bias']);
  });
});

describe('prune: selection and composition', () => {
  it('ties are pruned lowest index first (entries and channels)', async () => {
    const lin = new Linear(3, 2);
    noGrad(() => lin.weight.copy_(tensor([[1, -1, 2], [1, 3, -1]])));
    await prune.l1Unstructured(lin, 'weight', 2);
    expect([...members(lin).weight_mask.dataSync()]).toEqual([0, 0, 1, 1, 1, 1]); // |w| = 1 at 0, 1, 3, 5: the first two go
    const conv = new Conv2d(1, 3, 1, { bias: false });
    noGrad(() => conv.weight.copy_(fromArray([2, 1, 1], [3, 1, 1, 1])));
    await prune.lnStructured(conv, 'weight', 1, 1, 0);
    expect([...members(conv).weight_mask.dataSync()]).toEqual([1, 0, 1]);
  });

  it('re-pruning takes its amount of what is left, structured methods skip zeroed channels, masks only shrink', async () => {
    manualSeed(5);
    const conv = new Conv2d(3, 6, 3);
    await prune.l1Unstructured(conv, 'weight', 0.5); // 81 of 162
    const m1 = members(conv).weight_mask.dataSync().slice();
    await prune.l1Unstructured(conv, 'weight', 0.5); // half of the 81 left: round(40.5) = 40
    const m2 = members(conv).weight_mask.dataSync().slice();
    expect(m2.filter((v) => v === 0).length).toBe(81 + 40);
    for (let i = 0; i < m1.length; i++) if (m1[i] === 0) expect(m2[i]).toBe(0);
    await prune.lnStructured(conv, 'weight', 2, 1, 0);
    await prune.lnStructured(conv, 'weight', 2, 1, 0);
    const m3 = members(conv).weight_mask.dataSync();
    const zeroRows = [0, 1, 2, 3, 4, 5].filter((r) => m3.slice(r * 27, r * 27 + 27).every((v) => v === 0));
    expect(zeroRows.length).toBe(4); // the second call pruned 2 more, not the 2 already zero
    for (let i = 0; i < m2.length; i++) if (m2[i] === 0) expect(m3[i]).toBe(0);
    expect(conv._forwardPreHooks.size).toBe(1);
  });

  it('customFromMask composes with the existing mask; identity prunes nothing', async () => {
    const lin = new Linear(2, 2);
    await prune.identity(lin, 'weight');
    expect([...members(lin).weight_mask.dataSync()]).toEqual([1, 1, 1, 1]);
    await prune.customFromMask(lin, 'weight', tensor([[1, 0], [1, 1]]));
    await prune.customFromMask(lin, 'weight', tensor([[1, 1], [0, 1]]));
    expect([...members(lin).weight_mask.dataSync()]).toEqual([1, 0, 0, 1]);
  });

  it('globalUnstructured ranks all tensors together and prunes the still-unpruned entries', async () => {
    const a = new Linear(2, 2, { bias: false });
    const b = new Linear(3, 1, { bias: false });
    noGrad(() => {
      a.weight.copy_(tensor([[0.1, 5], [0.3, 6]]));
      b.weight.copy_(tensor([[0.2, 7, 0.4]]));
    });
    await prune.globalUnstructured([[a, 'weight'], [b, 'weight']], prune.L1Unstructured, { amount: 3 });
    expect([...members(a).weight_mask.dataSync()]).toEqual([0, 1, 0, 1]);
    expect([...members(b).weight_mask.dataSync()]).toEqual([0, 1, 1]);
    await prune.globalUnstructured([[a, 'weight'], [b, 'weight']], prune.L1Unstructured, { amount: 1 });
    expect([...members(b).weight_mask.dataSync()]).toEqual([0, 1, 0]); // 0.4 is the smallest left
    const scores = new Map<Module, Record<string, Tensor>>([[a, { weight: tensor([[9, 0], [9, 9]]) }]]);
    const c = new Linear(2, 2, { bias: false });
    noGrad(() => c.weight.copy_(tensor([[1, 2], [3, 4]])));
    await prune.globalUnstructured([[c, 'weight']], prune.L1Unstructured, { amount: 1, importanceScores: new Map([[c, { weight: tensor([[5, 6], [0.5, 8]]) }]]) });
    expect([...members(c).weight_mask.dataSync()]).toEqual([1, 1, 0, 1]);
    expect(scores.size).toBe(1);
    await expect(prune.globalUnstructured([[c, 'weight']], prune.LnStructured as never, { amount: 1 })).rejects.toThrow(/Only "unstructured" PRUNING_TYPE supported/);
  });

  it('a custom method subclass (compute_mask only) works alone and composed', async () => {
    class KeepFirst extends prune.BasePruningMethod {
      static override readonly PRUNING_TYPE = 'unstructured' as const;
      constructor(_o: object) {
        super();
      }
      override async computeMask(t: Tensor, defaultMask: Tensor): Promise<Tensor> {
        const m = (await defaultMask.toArray()).slice();
        for (let i = 1; i < t.numel(); i++) m[i] = 0;
        return fromArray(m, t.shape);
      }
    }
    const lin = new Linear(2, 2, { bias: false });
    await KeepFirst.apply(lin, 'weight', {});
    expect([...members(lin).weight_mask.dataSync()]).toEqual([1, 0, 0, 0]);
    const lin2 = new Linear(2, 2, { bias: false });
    noGrad(() => lin2.weight.copy_(tensor([[1, 2], [3, 4]])));
    await prune.l1Unstructured(lin2, 'weight', 1);
    await KeepFirst.apply(lin2, 'weight', {}); // of the 3 left, keeps the first
    expect([...members(lin2).weight_mask.dataSync()]).toEqual([0, 1, 0, 0]);
  });
});

describe('prune: sparsity report', () => {
  it('per tensor and global zeros of what forward uses, as the tutorial prints them', async () => {
    class Net extends Module {
      conv = new Conv2d(1, 2, 3, { bias: false });
      bn = new BatchNorm2d(2);
      fc = new Linear(2, 5);
    }
    const net = new Net();
    await prune.l1Unstructured(net.conv, 'weight', 9);
    await prune.l1Unstructured(net.fc, 'weight', 0.3);
    const r = await prune.sparsity(net);
    expect(r.tensors.map((t) => [t.name, t.zeros, t.numel])).toEqual([['conv.weight', 9, 18], ['fc.weight', 3, 10]]);
    expect(r.global).toEqual({ numel: 28, zeros: 12, fraction: 12 / 28 });
    expect(String(r)).toBe('Sparsity in conv.weight: 50.00%\nSparsity in fc.weight: 30.00%\nGlobal sparsity: 42.86%');
    const only = await prune.sparsity(net, [[net.fc, 'weight']]);
    expect(only.tensors.map((t) => t.name)).toEqual(['fc.weight']);
  });

  it('a pruned parameter stays unregistered as a Parameter in parameters() (only weight_orig is)', async () => {
    const lin = new Linear(2, 2);
    await prune.randomUnstructured(lin, 'weight', 1);
    const ps: Parameter[] = lin.parameters();
    expect(ps.includes(members(lin).weight_orig)).toBe(true);
    expect(ps.includes(members(lin).weight)).toBe(false);
  });
});
