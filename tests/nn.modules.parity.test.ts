// @kiln/nn against PyTorch for everything but training (tests/nn.training.parity.test.ts):
// module prints and state-dict keys, load errors, default init, LR schedules,
// loss modules and gradient clipping (the last two on every backend).
import { describe, expect, it } from 'vitest';
import { empty, fromArray, manualSeed, zeros, type Tensor } from '@kiln/core';
import {
  AdaptiveAvgPool2d, AvgPool2d, BatchNorm2d, Conv2d, CrossEntropyLoss, Dropout, Flatten, Identity, Linear, MaxPool2d,
  ModuleDict, ModuleList, MSELoss, NLLLoss, ReLU, Sequential, StateDictError, clipGradNorm_, init, lrScheduler, optim, type Module,
} from '@kiln/nn';
import { EXACT, describeEachBackend, describeReference, expectClose, webgpuStatus, type Tolerance } from '@kiln/test-helpers';
import { SmallCNN } from '../packages/nn/test/small-cnn.js';
import { nnRecord, upload, uploadState } from '../packages/nn/test/reference-nn.js';

const webgpu = await webgpuStatus();
const LOSS_TOL: Tolerance = { rtol: 1e-5, atol: 1e-6 };

function disposeModel(m: Module): void {
  for (const t of [...m.parameters(), ...m.buffers()]) t.dispose();
}

/** Mean and sample standard deviation of a tensor's values. */
function stats(values: ArrayLike<number>): { mean: number; std: number; maxAbs: number } {
  let s = 0;
  let maxAbs = 0;
  for (let i = 0; i < values.length; i++) {
    s += values[i]!;
    maxAbs = Math.max(maxAbs, Math.abs(values[i]!));
  }
  const mean = s / values.length;
  let v = 0;
  for (let i = 0; i < values.length; i++) v += (values[i]! - mean) ** 2;
  return { mean, std: Math.sqrt(v / (values.length - 1)), maxAbs };
}

describeReference('nn modules parity', 'nn', (ref) => {
  const nn = nnRecord(ref);

  describe('module structure', () => {
    it("prints the small CNN exactly as PyTorch's str(model)", () => {
      const m = new SmallCNN();
      expect(m.toString()).toBe(nn.cnn.str);
      disposeModel(m);
    });

    it('prints every layer type and container as PyTorch does', () => {
      const seq = new Sequential(
        new Conv2d(3, 4, 3, { stride: 2, padding: 1, dilation: 2, groups: 1 }),
        new Conv2d(4, 4, [1, 3], { padding: 'same', groups: 2, bias: false }),
        new BatchNorm2d(4, { eps: 1e-3, momentum: null, affine: false, trackRunningStats: false }),
        new ReLU(),
        new MaxPool2d(3, { stride: 2, padding: 1, ceilMode: true }),
        new AvgPool2d(2),
        new AdaptiveAvgPool2d(1),
        new Flatten(),
        new Dropout(0.25),
        new Identity(),
        new Linear(4, 2, { bias: false }),
      );
      expect(seq.toString()).toBe(nn.prints.sequential);
      expect(Object.keys(seq.stateDict())).toEqual(nn.prints.sequentialKeys);
      const list = new ModuleList([new Linear(2, 2), new Sequential(new ReLU(), new Identity())]);
      expect(list.toString()).toBe(nn.prints.moduleList);
      const dict = new ModuleDict({ act: new ReLU({ inplace: true }), pool: new AvgPool2d(3, { stride: 1, padding: 1 }) });
      expect(dict.toString()).toBe(nn.prints.moduleDict);
    });

    it("has PyTorch's state-dict keys, parameter names and buffer names (snake_case BN buffers)", () => {
      const m = new SmallCNN();
      const sd = m.stateDict();
      expect(Object.keys(sd)).toEqual(nn.cnn.keys);
      expect(m.namedParameters().map(([n]) => n)).toEqual(nn.cnn.parameterNames);
      expect(m.namedBuffers().map(([n]) => n)).toEqual(nn.cnn.bufferNames);
      for (const e of nn.cnn.initial) {
        expect(sd[e.key]!.shape, e.key).toEqual(e.tensor.shape);
        expect(sd[e.key]!.dtype, e.key).toBe(e.tensor.dtype);
      }
      Object.values(sd).forEach((t) => t.dispose());
      disposeModel(m);
    });

    it("loads PyTorch's weights exactly", async () => {
      const m = new SmallCNN();
      const initial = uploadState(ref, nn.cnn.initial, 'cpu');
      expect(m.loadStateDict(initial)).toEqual({ missingKeys: [], unexpectedKeys: [] });
      const sd = m.stateDict();
      for (const e of nn.cnn.initial) expectClose(await sd[e.key]!.toArray(), ref.values(e.tensor), EXACT, e.key);
      [...Object.values(sd), ...Object.values(initial)].forEach((t) => t.dispose());
      disposeModel(m);
    });

    it('lists every missing key, unexpected key and shape mismatch in one error, as PyTorch', () => {
      const m = new SmallCNN();
      const sd = m.stateDict();
      delete sd['bn1.running_var'];
      delete sd['fc.bias'];
      sd['fc.extra'] = zeros([1]);
      sd['head.weight'] = zeros([1]);
      sd['conv2.weight'] = zeros([16, 8, 5, 5]);
      let err: unknown;
      try {
        m.loadStateDict(sd);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(StateDictError);
      const e = err as StateDictError;
      expect(e.missingKeys).toEqual(nn.errors.missing);
      expect(e.unexpectedKeys).toEqual(nn.errors.unexpected);
      // Same text as PyTorch's, shapes written [16, 8, 5, 5] instead of torch.Size([16, 8, 5, 5]).
      const torchText = nn.errors.message.replace(/torch\.Size\((\[[^\]]*\])\)/g, '$1');
      expect(e.message).toBe(`loadStateDict: ${torchText}`);
      const { ['conv2.weight']: _, ...rest } = sd;
      expect(new SmallCNN().loadStateDict(rest, { strict: false })).toEqual({ missingKeys: nn.errors.nonStrict.missing, unexpectedKeys: nn.errors.nonStrict.unexpected });
      Object.values(sd).forEach((t) => t.dispose());
    });
  });

  describe('default initialisation (statistics against PyTorch\'s formulas)', () => {
    it('Conv2d and Linear: kaiming-uniform(a=√5) weights and U(±1/√fan_in) biases', async () => {
      manualSeed(11);
      const layers = { conv: new Conv2d(64, 128, 3), linear: new Linear(512, 300) };
      for (const [name, layer] of Object.entries(layers)) {
        const r = nn.init[name];
        expect(layer.weight.shape).toEqual(r.weightShape);
        expect(init._calculateFanInAndFanOut(layer.weight)).toEqual([r.fanIn, r.fanOut]);
        const w = stats(await layer.weight.toArray());
        const b = stats(await layer.bias!.toArray());
        // U(-a, a) has std a/√3; n >= 150k samples put the sample std within 1% of it.
        expect(w.maxAbs).toBeLessThanOrEqual(r.weightBound * (1 + 1e-6));
        expect(w.maxAbs).toBeGreaterThan(r.weightBound * 0.999);
        expect(Math.abs(w.std / (r.weightBound / Math.sqrt(3)) - 1)).toBeLessThan(0.01);
        expect(Math.abs(w.std / r.torchWeightStd - 1)).toBeLessThan(0.02);
        expect(Math.abs(w.mean)).toBeLessThan(r.weightBound * 0.01);
        expect(b.maxAbs).toBeLessThanOrEqual(r.biasBound * (1 + 1e-6));
        disposeModel(layer);
      }
    });

    it('BatchNorm2d starts at weight 1, bias 0, running mean 0, var 1, no batches', async () => {
      const bn = new BatchNorm2d(5);
      expect(Array.from(await bn.weight!.toArray())).toEqual([1, 1, 1, 1, 1]);
      expect(Array.from(await bn.bias!.toArray())).toEqual([0, 0, 0, 0, 0]);
      expect(Array.from(await bn.running_mean!.toArray())).toEqual([0, 0, 0, 0, 0]);
      expect(Array.from(await bn.running_var!.toArray())).toEqual([1, 1, 1, 1, 1]);
      expect(bn.num_batches_tracked!.dtype).toBe('int32');
      expect(await bn.num_batches_tracked!.item()).toBe(0);
    });

    it('kaimingNormal_, xavierUniform_, xavierNormal_, kaimingUniform_(leaky_relu) follow their formulas', async () => {
      manualSeed(12);
      const r = nn.init;
      const kn = stats(await init.kaimingNormal_(empty(r.kaimingNormalFanOutRelu.shape), { mode: 'fan_out', nonlinearity: 'relu' }).toArray());
      expect(Math.abs(kn.std / r.kaimingNormalFanOutRelu.std - 1)).toBeLessThan(0.01);
      expect(Math.abs(kn.std / r.kaimingNormalFanOutRelu.torchStd - 1)).toBeLessThan(0.02);
      const xu = stats(await init.xavierUniform_(empty(r.xavierUniform.shape), r.xavierUniform.gain).toArray());
      expect(xu.maxAbs).toBeLessThanOrEqual(r.xavierUniform.bound * (1 + 1e-6));
      expect(xu.maxAbs).toBeGreaterThan(r.xavierUniform.bound * 0.999);
      const xn = stats(await init.xavierNormal_(empty(r.xavierNormal.shape), r.xavierNormal.gain).toArray());
      expect(Math.abs(xn.std / r.xavierNormal.std - 1)).toBeLessThan(0.01);
      expect(Math.abs(xn.mean)).toBeLessThan(r.xavierNormal.std * 0.01);
      const ku = stats(await init.kaimingUniform_(empty(r.kaimingUniformLeaky.shape), { a: r.kaimingUniformLeaky.a }).toArray());
      expect(ku.maxAbs).toBeLessThanOrEqual(r.kaimingUniformLeaky.bound * (1 + 1e-6));
      expect(Math.abs(ku.std / (r.kaimingUniformLeaky.bound / Math.sqrt(3)) - 1)).toBeLessThan(0.02);
    });

    it('calculateGain and _calculateFanInAndFanOut equal PyTorch\'s', () => {
      for (const g of nn.init.gains) expect(init.calculateGain(g.nonlinearity, g.param), `${g.nonlinearity}(${g.param})`).toBeCloseTo(g.gain, 15);
      for (const f of nn.init.fans) expect(init._calculateFanInAndFanOut(f.shape)).toEqual(f.fans);
    });
  });

  describe('LR schedulers (PyTorch 1.13 semantics, two parameter groups)', () => {
    const makers: Record<string, (o: optim.Optimizer) => lrScheduler.LRScheduler> = {
      StepLR: (o) => new lrScheduler.StepLR(o, 3, { gamma: 0.5 }),
      MultiStepLR: (o) => new lrScheduler.MultiStepLR(o, [2, 5, 5, 9], { gamma: 0.3 }),
      CosineAnnealingLR: (o) => new lrScheduler.CosineAnnealingLR(o, 5, { etaMin: 0.001 }),
      LinearLR: (o) => new lrScheduler.LinearLR(o, { startFactor: 0.2, endFactor: 0.9, totalIters: 4 }),
      LambdaLR: (o) => new lrScheduler.LambdaLR(o, [(e) => 1 / (e + 1), (e) => 0.9 ** e]),
      SequentialLR: (o) => new lrScheduler.SequentialLR(o, [new lrScheduler.LinearLR(o, { startFactor: 0.1, totalIters: 3 }), new lrScheduler.StepLR(o, 2, { gamma: 0.5 })], [4]),
    };
    for (const rec of nn.schedulers) {
      it(`${rec.name}: getLastLr() after construction and 14 steps, initialLr, state keys`, () => {
        const a = zeros([1], { requiresGrad: true });
        const b = zeros([1], { requiresGrad: true });
        const opt = new optim.SGD([{ params: [a] }, { params: [b], lr: 0.01 }], { lr: 0.1 });
        const s = makers[rec.name]!(opt);
        const seq = [s.getLastLr()];
        for (let i = 0; i < 14; i++) {
          opt.step();
          s.step();
          seq.push(s.getLastLr());
        }
        // Same formulas in doubles; only Math.cos/pow may differ from libm in the last bit.
        expectClose(seq.flat(), rec.lrs.flat(), { rtol: 1e-12, atol: 1e-18 }, 'lr sequence');
        expect(opt.paramGroups.map((g) => g.initialLr)).toEqual(rec.initialLr);
        expect(Object.keys(s.stateDict()).filter((k) => k !== '_schedulers').sort()).toEqual(rec.stateKeys);
      });
    }
  });

  describeEachBackend('nn losses and clipping', webgpu, (device) => {
    it('the reference holds loss cases (an empty list would check nothing)', () => expect(nn.losses.cases.length).toBeGreaterThan(0));
    for (const [i, c] of nn.losses.cases.entries()) {
      it(`${c.name} ${JSON.stringify(c.options)}: value and input gradient`, async () => {
        const x = upload(ref, c.input, device).requiresGrad_(true);
        const t = upload(ref, c.target, device);
        const weight = c.options.weight ? upload(ref, nn.losses.weight, device) : undefined;
        const opts = { ...c.options, weight } as Record<string, unknown>;
        const fn = c.name === 'CrossEntropyLoss' ? new CrossEntropyLoss(opts) : c.name === 'NLLLoss' ? new NLLLoss(opts) : new MSELoss(opts);
        expect(fn.toString()).toBe(c.str);
        const value = fn.call(x, t);
        expectClose(await value.toArray(), ref.values(c.value), LOSS_TOL, `case ${i} value`);
        value.backward(fromArray(new Float32Array(value.numel()).fill(1), value.shape, { device }));
        expectClose(await x.grad!.toArray(), ref.values(c.grad), LOSS_TOL, `case ${i} grad`);
      });
    }

    for (const c of nn.clip.cases) {
      it(`clipGradNorm_(normType=${c.normType}, maxNorm=${c.maxNorm}): total norm and clipped gradients`, async () => {
        const params: Tensor[] = nn.clip.grads.map((g) => {
          const p = zeros(g.shape, { device, requiresGrad: true });
          p.grad = upload(ref, g, device);
          return p;
        });
        const total = clipGradNorm_(params, c.maxNorm, c.normType === 'inf' ? Infinity : c.normType);
        expect(total.shape).toEqual([]);
        expectClose([await total.item()], [c.total], { rtol: 1e-5, atol: 0 }, 'total norm');
        for (let i = 0; i < params.length; i++) expectClose(await params[i]!.grad!.toArray(), ref.values(c.clipped[i]!), { rtol: 1e-5, atol: 1e-7 }, `grad ${i}`);
      });
    }
  });
});
