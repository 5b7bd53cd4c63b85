// Every op mapping of @kiln/onnx, on every backend, through small models:
// each export passes onnx.checker (full check) and onnxruntime-node computes
// Kiln's output; an op without a mapping fails naming the op and the module;
// export leaves the model's train/eval flags as they were. Small shapes keep
// the file to a few seconds.
import { expect, it } from 'vitest';
import { cat, fromArray, manualSeed, noGrad, pad, randn, tensor, where, type Tensor } from '@kiln/core';
import { AdaptiveAvgPool2d, AvgPool2d, BatchNorm2d, Conv2d, Linear, MaxPool2d, Module, ReLU, Sequential } from '@kiln/nn';
import { exportOnnx, readOnnx } from '@kiln/onnx';
import { describeEachBackend, describeWhenReady, webgpuStatus } from '@kiln/test-helpers';
import { checkModel, maxAbsDiff, onnxCheckerProblem, opHistogram, runOrt } from '../packages/onnx/test/tools.js';

// Small graphs of O(1) values: onnxruntime and Kiln differ by float32
// summation order only, a few ulps; 1e-5 still catches any wrong attribute.
const ATOL = 1e-5;

/** A module from a forward function (children registered by the caller). */
class Fn extends Module {
  constructor(private readonly fn: (self: Fn, ...xs: Tensor[]) => Tensor, children: Record<string, Module> = {}) {
    super();
    for (const [k, m] of Object.entries(children)) this.registerModule(k, m);
  }
  override forward(...xs: Tensor[]): Tensor {
    return this.fn(this, ...xs);
  }
}

const child = (m: Module, name: string) => m.getSubmodule(name) as any;

async function expectOrtMatches(model: Module, inputs: Tensor[], opts: Parameters<typeof exportOnnx>[2] = {}): Promise<Uint8Array> {
  const want = noGrad(() => model.call(...inputs) as Tensor);
  const bytes = await exportOnnx(model, inputs, opts);
  checkModel(bytes);
  const names = opts.inputNames ?? inputs.map((_, i) => (i === 0 ? 'input' : `input_${i}`));
  const feeds = Object.fromEntries(await Promise.all(inputs.map(async (x, i) => [names[i]!, { data: (await x.toArray()) as Float32Array | Int32Array, dims: x.shape }] as const)));
  const got = await runOrt(bytes, feeds);
  const out = got[(opts.outputNames ?? ['output'])[0]!]!;
  const w = await want.toArray();
  expect(out.length).toBe(w.length);
  expect(maxAbsDiff(Array.from(out, Number), Array.from(w as ArrayLike<number>, Number))).toBeLessThanOrEqual(ATOL);
  return bytes;
}

const webgpu = await webgpuStatus();

describeWhenReady('onnx op mappings', onnxCheckerProblem(), () => {
  describeEachBackend('exportOnnx ops', webgpu, (device) => {
    it('Conv with stride, padding, dilation, groups and bias; BatchNorm kept and folded; in-place ReLU; pooling incl. ceil mode', async () => {
      manualSeed(1);
      const net = new Sequential(
        new Conv2d(3, 8, 3, { stride: 2, padding: 1, device }),
        new BatchNorm2d(8, { device }),
        new ReLU({ inplace: true }),
        new Conv2d(8, 8, 3, { padding: 2, dilation: 2, groups: 4, bias: true, device }),
        new MaxPool2d(3, { stride: 2, ceilMode: true }),
        new AvgPool2d(2, { stride: 1, padding: 1, countIncludePad: false }),
        new AdaptiveAvgPool2d([2, 2]),
      );
      const bn = net.at(1) as BatchNorm2d;
      noGrad(() => {
        bn.running_mean!.copy_(randn([8], { device }).mul(0.1));
        bn.running_var!.copy_(randn([8], { device }).abs().add(0.5));
        bn.weight!.copy_(randn([8], { device }));
      });
      net.train();
      const x = randn([2, 3, 13, 11], { device });
      net.eval();
      const folded = await expectOrtMatches(net, [x]);
      expect(opHistogram(folded)).toEqual({ Conv: 2, Relu: 1, MaxPool: 1, AveragePool: 2 });
      const kept = await expectOrtMatches(net, [x], { foldBatchNorm: false, opset: 13 });
      expect(opHistogram(kept).BatchNormalization).toBe(1);
      // The ceil-mode pool reached ONNX with ceil_mode = 1.
      const pool = readOnnx(kept).graph.nodes.find((n) => n.opType === 'MaxPool')!;
      expect(pool.attribute.find((a) => a.name === 'ceil_mode')!.i).toBe(1);
      // Export puts the model in eval for the trace and restores every flag.
      net.train();
      await exportOnnx(net, x);
      expect(net.modules().every((m) => m.training)).toBe(true);
    });

    it('elementwise, where, clamp, softmax / logSoftmax, reductions and argmax', async () => {
      const m = new Fn((_s, x, y) => {
        const a = x.mul(2).sub(y).div(y.abs().add(1)).pow(2).maximum(x.neg()).minimum(3);
        const b = a.exp().log().sqrt().rsqrt().sigmoid().tanh().clamp(-0.5, 0.9);
        const c = b.square().add(b.reciprocal().clamp(null, 4)).add(x.sin().mul(x.cos())).add(x.floor()).add(x.ceil()).add(x.round()).add(x.sign());
        const mask = x.gt(y).logicalOr(x.le(0)).logicalAnd(x.ne(y));
        const d = where(mask, c, y);
        const s = d.softmax(1).add(d.logSoftmax(0)).add(d.sum(1, true)).add(d.mean([0, 1], true)).add(d.max(1, true).values);
        return s.add(s.argmax(1, true).to('float32')).add(s.min());
      });
      const x = randn([3, 5], { device });
      const y = randn([3, 5], { device });
      await expectOrtMatches(m, [x, y]);
    });

    it('views and data movement: reshape, flatten, permute, transpose, slice, expand, cat, pad, gather, indexSelect, matmul, linear on 3-D input', async () => {
      manualSeed(2);
      const lin = new Linear(4, 6, { device });
      const m = new Fn(
        (self, x) => {
          const v = x.reshape([2, 3, 4]).permute([0, 2, 1]).transpose(1, 2); // [2, 3, 4]
          const s = v.slice(1, 1, 3).slice(2, 0, 4, 2); // [2, 2, 2]
          const e = s.sum(2, true).expand([2, 2, 5]); // [2, 2, 5]
          const c = cat([e, e.mul(2)], 2); // [2, 2, 10]
          const p = pad(c, [1, 2, 0, 1], 0.5); // [2, 3, 13]
          const idx = fromArray(Int32Array.from([2, 0]), [2], { device });
          const g = p.indexSelect(2, idx).gather(2, fromArray(Int32Array.from([1, 0, 0, 1, 1, 1, 0, 0, 1, 0, 1, 1]), [2, 3, 2], { device }));
          const mm = g.matmul(tensor([[1, 2, 3], [4, 5, 6]], { device, dtype: 'float32' }));
          const l = child(self, 'lin').call(v) as Tensor; // Linear on [2, 3, 4]: MatMul + Add
          return cat([mm.flatten(), l.flatten(), x.flatten()], 0);
        },
        { lin },
      );
      const x = randn([6, 4], { device });
      await expectOrtMatches(m, [x]);
    });

    it('a dynamic batch axis survives reshape and flatten (0 = copy the input dim), declared as dim_param', async () => {
      manualSeed(3);
      const fc = new Linear(12, 3, { device });
      const m = new Fn((self, x) => child(self, 'fc').call(x.reshape([x.shape[0]!, 3, 4]).flatten(1)).softmax(1), { fc });
      const bytes = await exportOnnx(m, randn([1, 3, 2, 2], { device }), { dynamicAxes: { input: [0], output: [0] } });
      checkModel(bytes);
      const g = readOnnx(bytes).graph;
      expect(g.inputs[0]!.dims).toEqual(['input_dynamic_axes_1', 3, 2, 2]);
      expect(g.outputs[0]!.dims[0]).toBe('output_dynamic_axes_1');
      const x5 = randn([5, 3, 2, 2], { device });
      const got = await runOrt(bytes, { input: { data: (await x5.toArray()) as Float32Array, dims: x5.shape } });
      const want = await noGrad(() => m.call(x5)).toArray();
      expect(maxAbsDiff(got.output!, want as Float32Array)).toBeLessThanOrEqual(ATOL);
    });

    it('an op without an ONNX mapping, or one that would bake a dynamic axis in, fails naming the op and the module', async () => {
      const inner = new Fn((_s, x) => x.indexAdd(0, fromArray(Int32Array.from([0]), [1], { device }), x.slice(0, 0, 1)));
      const outer = new Fn((self, x) => child(self, 'inner').call(x.relu()), { inner });
      await expect(exportOnnx(outer, randn([2, 3], { device }))).rejects.toThrow(/indexAdd in module 'inner'.*no ONNX mapping/);
      const merge = new Fn((_s, x) => x.reshape([-1]));
      await expect(exportOnnx(merge, randn([2, 3], { device }), { dynamicAxes: { input: { 0: 'batch' } } })).rejects.toThrow(/view in module '<root>'.*dynamic axis 'batch'/);
      await expect(exportOnnx(merge, randn([2, 3], { device }), { opset: 9 })).rejects.toThrow(/opset 9 is not supported/);
    });
  });
});
