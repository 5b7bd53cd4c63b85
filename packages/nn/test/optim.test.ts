// Optimizer mechanics: parameter groups, validation, state dicts that resume
// training exactly, closures; SGD's rule on a hand-checkable example.
import { describe, expect, it } from 'vitest';
import { manualSeed, randn, tensor, zeros, type Tensor } from '@kiln/core';
import { Linear, MSELoss, lrScheduler, optim } from '@kiln/nn';

function trainSteps(model: Linear, opt: optim.Optimizer, steps: number, seed: number): void {
  manualSeed(seed);
  const lossFn = new MSELoss();
  for (let i = 0; i < steps; i++) {
    const x = randn([8, 4]);
    const y = randn([8, 2]);
    opt.zeroGrad();
    lossFn.call(model.call(x), y).backward();
    opt.step();
  }
}

describe('optimizers', () => {
  it('SGD follows PyTorch: buffer = first grad, then momentum * buf + (1 - dampening) * grad', async () => {
    const p = tensor([1, 2], { dtype: 'float32', requiresGrad: true });
    const opt = new optim.SGD([p], { lr: 0.1, momentum: 0.5, dampening: 0.5, weightDecay: 0.1 });
    p.grad = tensor([1, 1], { dtype: 'float32' });
    opt.step(); // d = 1 + 0.1 p = [1.1, 1.2]; buf = d; p -= 0.1 d
    expect(Array.from(await p.toArray())).toEqual([Math.fround(1 - 0.11), Math.fround(2 - 0.12)]);
    opt.step(); // d = 1 + 0.1 p; buf = 0.5 buf + 0.5 d
    const d = [1 + 0.1 * Math.fround(0.89), 1 + 0.1 * Math.fround(1.88)];
    const buf = [0.5 * 1.1 + 0.5 * d[0]!, 0.5 * 1.2 + 0.5 * d[1]!];
    const got = await p.toArray();
    expect(got[0]).toBeCloseTo(0.89 - 0.1 * buf[0]!, 6);
    expect(got[1]).toBeCloseTo(1.88 - 0.1 * buf[1]!, 6);
  });

  it('groups override defaults; addParamGroup; a parameter in two groups is an error', () => {
    const a = new Linear(2, 2);
    const b = new Linear(2, 2);
    const opt = new optim.SGD([{ params: a.parameters(), lr: 1 }], { lr: 0.1, momentum: 0.9 });
    opt.addParamGroup({ params: b.parameters(), weightDecay: 0.01 });
    expect(opt.paramGroups.map((g) => [g.lr, g.momentum, g.weightDecay])).toEqual([[1, 0.9, 0], [0.1, 0.9, 0.01]]);
    expect(() => opt.addParamGroup({ params: [a.weight] })).toThrow(/more than one parameter group/);
    expect(() => new optim.SGD(a.parameters(), { lr: 0.1, nesterov: true })).toThrow(/Nesterov momentum requires a momentum and zero dampening/);
    expect(() => new optim.Adam(a.parameters(), { betas: [1, 0.9] })).toThrow(/Invalid beta parameter at index 0/);
    expect(() => new optim.SGD([a.weight.mul(2)], { lr: 0.1 })).toThrow(/non-leaf/);
  });

  for (const make of [
    (ps: Tensor[]) => new optim.SGD(ps, { lr: 0.05, momentum: 0.9, nesterov: true }),
    (ps: Tensor[]) => new optim.AdamW(ps, { lr: 0.01, amsgrad: true }),
  ]) {
    it(`${make([zeros([1], { requiresGrad: true })]).constructor.name}: stateDict/loadStateDict resumes training exactly`, async () => {
      manualSeed(1);
      const ref = new Linear(4, 2);
      const resumed = new Linear(4, 2);
      resumed.loadStateDict(ref.stateDict());
      const optRef = make(ref.parameters());
      trainSteps(ref, optRef, 3, 10);
      const first = make(resumed.parameters());
      trainSteps(resumed, first, 3, 10);
      const saved = first.stateDict();
      const second = make(resumed.parameters());
      second.loadStateDict(saved);
      trainSteps(ref, optRef, 3, 20);
      trainSteps(resumed, second, 3, 20);
      expect(Array.from(await resumed.weight.toArray())).toEqual(Array.from(await ref.weight.toArray()));
    });
  }

  it('step(closure) returns the closure\'s loss', () => {
    const lin = new Linear(2, 1);
    const opt = new optim.SGD(lin.parameters(), { lr: 0.1 });
    const loss = opt.step(() => {
      opt.zeroGrad();
      const l = lin.call(randn([3, 2])).sum();
      l.backward();
      return l;
    });
    expect(loss?.shape).toEqual([]);
  });

  it('a scheduler sets initialLr once and its state dict restores it', () => {
    const opt = new optim.SGD([zeros([1], { requiresGrad: true })], { lr: 1 });
    const s = new lrScheduler.StepLR(opt, 2, { gamma: 0.5 });
    for (let i = 0; i < 5; i++) s.step();
    const saved = s.stateDict();
    const opt2 = new optim.SGD([zeros([1], { requiresGrad: true })], { lr: 1 });
    const s2 = new lrScheduler.StepLR(opt2, 7);
    s2.loadStateDict(saved);
    opt2.paramGroups[0]!.lr = opt.paramGroups[0]!.lr;
    s.step();
    s2.step();
    expect(s2.getLastLr()).toEqual(s.getLastLr());
    expect(opt.paramGroups[0]!.initialLr).toBe(1);
  });
});
