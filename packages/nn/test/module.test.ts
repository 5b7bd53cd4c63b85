// Module behaviour PyTorch users rely on: registration by assignment,
// traversal, modes, freezing, hooks, containers, state dicts.
import { describe, expect, it } from 'vitest';
import { ones, randn, tensor, zeros, type Tensor } from '@kiln/core';
import {
  BatchNorm2d, Conv2d, Dropout, Identity, Linear, Module, ModuleDict, ModuleList, ReLU, Sequential, StateDictError, isParameter, parameter,
} from '@kiln/nn';
import { SmallCNN } from './small-cnn.js';

class Scale extends Module {
  factor = parameter(ones([1]));
  constructor() {
    super();
    this.registerBuffer('calls', zeros([1]), { persistent: false });
  }
  override forward(x: Tensor): Tensor {
    return x.mul(this.factor);
  }
}

describe('Module registration', () => {
  it('registers class fields and replaces a head on assignment', () => {
    const m = new SmallCNN();
    expect(m.children().length).toBe(8);
    expect(m.parameters().length).toBe(8);
    m.fc = new Linear(16, 2);
    expect(m.fc.outFeatures).toBe(2);
    expect(m.stateDict({ keepVars: true })['fc.weight']!.shape).toEqual([2, 16]);
    expect(m.namedChildren().map(([n]) => n).at(-1)).toBe('fc');
  });

  it('rejects a plain tensor assigned over a parameter, accepts parameter() and null', () => {
    const lin = new Linear(3, 2);
    expect(() => ((lin as unknown as { weight: Tensor }).weight = zeros([2, 3]))).toThrow(/cannot assign 'Tensor' as parameter 'weight'/);
    lin.weight = parameter(zeros([2, 3]));
    expect(isParameter(lin.weight)).toBe(true);
    lin.bias = null;
    expect(lin.parameters().length).toBe(1);
    expect(Object.keys(lin.stateDict())).toEqual(['weight']);
  });

  it('supports the pruning pattern: weight_orig/weight_mask members, weight recomputed by a pre-hook and used by forward', () => {
    const lin = new Linear(3, 2);
    const orig = lin.weight;
    delete (lin as Partial<Linear>).weight;
    lin.registerParameter('weight_orig', orig);
    // Zeroes one entry of each row: forward must use orig * mask, not orig.
    const mask = tensor([[1, 0, 1], [0, 1, 1]]);
    lin.registerBuffer('weight_mask', mask);
    const members = lin as unknown as { weight: Tensor; weight_orig: Tensor; weight_mask: Tensor };
    lin.registerForwardPreHook((m) => {
      const t = m as unknown as typeof members;
      t.weight = t.weight_orig.mul(t.weight_mask);
    });
    const x = tensor([[1, 2, 3], [-1, 0.5, 2]]);
    const y = lin.call(x).dataSync();
    const w = orig.dataSync();
    const b = lin.bias!.dataSync();
    const m = mask.dataSync();
    const dense = lin.forward(x).dataSync(); // weight is now the masked tensor: forward alone agrees
    for (let i = 0; i < 2; i++) {
      for (let o = 0; o < 2; o++) {
        let want = b[o]!;
        for (let k = 0; k < 3; k++) want += x.dataSync()[i * 3 + k]! * w[o * 3 + k]! * m[o * 3 + k]!;
        expect(y[i * 2 + o]).toBeCloseTo(want, 5);
        expect(dense[i * 2 + o]).toBeCloseTo(want, 5);
      }
    }
    // The masked entries changed the output (w[0][1] * x[0][1] is not zero), so the mask mattered.
    const unmasked = b[0]! + w[0]! * 1 + w[1]! * 2 + w[2]! * 3;
    expect(Math.abs(y[0]! - unmasked)).toBeGreaterThan(1e-3 * Math.abs(w[1]!));
    expect(members.weight.dataSync()[1]).toBe(0);
    expect(Object.keys(lin.stateDict())).toEqual(['bias', 'weight_orig', 'weight_mask']);
  });

  it('keeps non-persistent buffers out of the state dict', () => {
    const s = new Scale();
    expect(s.namedBuffers().map(([n]) => n)).toEqual(['calls']);
    expect(Object.keys(s.stateDict())).toEqual(['factor']);
    expect('calls' in s).toBe(true);
  });

  it('validates names', () => {
    const m = new Module();
    expect(() => m.registerBuffer('a.b', null)).toThrow(/can't contain "."/);
    expect(() => m.registerModule('train', new ReLU())).toThrow(/attribute 'train' already exists/);
  });

  it('forward without an override names the module', () => {
    expect(() => new Module().call()).toThrow(/Module \[Module\] is missing the required "forward" function/);
  });
});

describe('Module modes, freezing, gradients', () => {
  it('train()/eval() recurse; Dropout is the identity in eval mode', () => {
    const m = new Sequential(new Linear(4, 4), new Sequential(new Dropout(0.9)));
    m.eval();
    expect(m.modules().every((c) => !c.training)).toBe(true);
    const x = randn([3, 4]);
    const drop = (m.at(1) as Sequential).at(0);
    expect(drop.call(x)).toBe(x);
    m.train();
    expect(m.modules().every((c) => c.training)).toBe(true);
  });

  it('requiresGrad_(false) freezes: no gradient reaches frozen parameters', () => {
    const m = new Sequential(new Linear(3, 3), new ReLU(), new Linear(3, 1));
    (m.at(0) as Linear).requiresGrad_(false);
    m.call(randn([2, 3])).sum().backward();
    expect((m.at(0) as Linear).weight.grad).toBeNull();
    expect((m.at(2) as Linear).weight.grad).not.toBeNull();
  });

  it('zeroGrad disposes gradients by default and zeroes them with setToNone: false', async () => {
    const lin = new Linear(2, 1);
    lin.call(randn([3, 2])).sum().backward();
    const g = lin.weight.grad!;
    lin.zeroGrad({ setToNone: false });
    expect(lin.weight.grad).toBe(g);
    expect(Array.from(await g.toArray())).toEqual([0, 0]);
    lin.zeroGrad();
    expect(lin.weight.grad).toBeNull();
    expect(g.isDisposed).toBe(true);
  });

  it('apply visits children before the parent', () => {
    const order: string[] = [];
    new Sequential(new ReLU(), new Identity()).apply((m) => order.push(m._getName()));
    expect(order).toEqual(['ReLU', 'Identity', 'Sequential']);
  });
});

describe('Module hooks', () => {
  it('pre-hooks replace arguments, hooks replace outputs, remove() unregisters', async () => {
    const s = new Scale();
    const pre = s.registerForwardPreHook((_m, [x]) => [(x as Tensor).add(1)]);
    const post = s.registerForwardHook((_m, _args, out) => (out as Tensor).mul(10));
    expect(Array.from(await s.call(tensor([1, 2], { dtype: 'float32' })).toArray())).toEqual([20, 30]);
    pre.remove();
    expect(Array.from(await s.call(tensor([1, 2], { dtype: 'float32' })).toArray())).toEqual([10, 20]);
    post.remove();
    expect(Array.from(await s.call(tensor([1, 2], { dtype: 'float32' })).toArray())).toEqual([1, 2]);
  });
});

describe('containers', () => {
  it('Sequential is indexable, appendable, iterable and names children 0, 1, ...', () => {
    const seq = new Sequential(new Linear(2, 3), new ReLU());
    expect(seq[0]).toBeInstanceOf(Linear);
    expect(seq.at(-1)).toBeInstanceOf(ReLU);
    seq.append(new Linear(3, 1));
    expect(seq.length).toBe(3);
    expect([...seq].map((m) => m._getName())).toEqual(['Linear', 'ReLU', 'Linear']);
    expect(Object.keys(seq.stateDict())).toEqual(['0.weight', '0.bias', '2.weight', '2.bias']);
    expect(seq.call(randn([5, 2])).shape).toEqual([5, 1]);
    expect(seq.slice(1).length).toBe(2);
    const named = new Sequential({ conv: new Conv2d(1, 1, 1), act: new ReLU() });
    expect(named.namedChildren().map(([n]) => n)).toEqual(['conv', 'act']);
  });

  it('ModuleList and ModuleDict register their members; dict keys may not shadow methods (as PyTorch)', () => {
    const list = new ModuleList([new Linear(1, 1)]);
    list.append(new Linear(1, 1));
    expect(list.parameters().length).toBe(4);
    expect(() => new ModuleDict({ train: new ReLU() })).toThrow(/attribute 'train' already exists/);
    const dict = new ModuleDict({ act: new ReLU(), head: new Linear(2, 2) });
    expect(dict.get('act')).toBeInstanceOf(ReLU);
    expect(dict.keys()).toEqual(['act', 'head']);
    expect(Object.keys(dict.stateDict())).toEqual(['head.weight', 'head.bias']);
  });
});

describe('state dicts', () => {
  it('round-trips a model, including BN buffers and num_batches_tracked', async () => {
    const a = new SmallCNN();
    a.call(randn([2, 3, 8, 8]));
    const b = new SmallCNN();
    b.loadStateDict(a.stateDict());
    const sa = a.stateDict();
    const sb = b.stateDict();
    for (const k of Object.keys(sa)) expect(Array.from(await sb[k]!.toArray()), k).toEqual(Array.from(await sa[k]!.toArray()));
    expect(await b.bn1.num_batches_tracked!.item()).toBe(1);
  });

  it('errors carry the missing and unexpected keys', () => {
    const lin = new Linear(2, 2);
    try {
      lin.loadStateDict({ weight: zeros([2, 2]), other: zeros([1]) });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(StateDictError);
      expect((e as StateDictError).missingKeys).toEqual(['bias']);
      expect((e as StateDictError).unexpectedKeys).toEqual(['other']);
    }
  });
});

describe('BatchNorm2d', () => {
  it('momentum=null keeps a cumulative average of the batch statistics', async () => {
    const bn = new BatchNorm2d(2, { momentum: null });
    const x1 = randn([4, 2, 3, 3]);
    const x2 = randn([4, 2, 3, 3]).add(3);
    bn.call(x1);
    bn.call(x2);
    const m1 = await x1.mean([0, 2, 3]).toArray();
    const m2 = await x2.mean([0, 2, 3]).toArray();
    const rm = await bn.running_mean!.toArray();
    for (let c = 0; c < 2; c++) expect(rm[c]).toBeCloseTo((m1[c]! + m2[c]!) / 2, 5);
    expect(await bn.num_batches_tracked!.item()).toBe(2);
  });

  it('eval mode uses the running statistics', async () => {
    const bn = new BatchNorm2d(1).eval();
    const y = bn.call(tensor([[[[1, 2]]]], { dtype: 'float32' }));
    const v = await y.toArray();
    expect(v[0]).toBeCloseTo(1 / Math.sqrt(1 + 1e-5), 6);
  });

  it('rejects non-4-D input', () => {
    expect(() => new BatchNorm2d(2).call(randn([2, 2]))).toThrow(/expected 4D input \(got 2D input\)/);
  });
});
