// Static post-training quantization vs PyTorch (tests/reference/gen_quant_static.py,
// engine qnnpack, whose int8 conv / linear arithmetic is ONNX QLinearConv's and Kiln's):
// the same float weights, fuseModules -> prepare -> the same calibration
// batches -> convert with MinMax activations / per-channel symmetric weights,
// on a CNN with every piece a quantized ResNet uses. Every observed layer's
// scale and zero point equal PyTorch's; each quantized activation's integers
// equal PyTorch's on >= 99% of elements and are within one quantum on all
// (rounding ties and float summation order may differ); the final output is
// within 2 output quanta. Both backends.
import { describe, expect, it } from 'vitest';
import * as kiln from '@kiln/core';
import {
  AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Flatten, Linear, MaxPool2d, Module, ReLU, quantization,
} from '@kiln/nn';
import { describeEachBackend, webgpuStatus } from './helpers/env.js';
import { describeReference, type ReferenceFile, type RefCase } from './helpers/reference.js';

const webgpu = await webgpuStatus();
const q = quantization;

class Net extends Module {
  quant = new q.QuantStub();
  conv1 = new Conv2d(3, 8, 3, { stride: 2, padding: 1, bias: false });
  bn1 = new BatchNorm2d(8);
  relu = new ReLU();
  conv2 = new Conv2d(8, 8, 3, { padding: 1, bias: false });
  bn2 = new BatchNorm2d(8);
  skip = new q.FloatFunctional();
  pool = new MaxPool2d(3, { stride: 2, padding: 1 });
  conv3 = new Conv2d(8, 16, 1);
  avgpool = new AdaptiveAvgPool2d(1);
  flatten = new Flatten();
  fc = new Linear(16, 5);
  dequant = new q.DeQuantStub();

  override forward(x: kiln.Tensor): kiln.Tensor {
    x = this.quant.call(x);
    x = this.relu.call(this.bn1.call(this.conv1.call(x)));
    const y = this.bn2.call(this.conv2.call(x));
    x = this.skip.addRelu(y, x);
    x = this.pool.call(x) as kiln.Tensor;
    x = this.conv3.call(x);
    x = this.avgpool.call(x);
    return this.dequant.call(this.fc.call(this.flatten.call(x)));
  }
}

interface StaticArgs { stateKeys: string[]; qparams: Record<string, { scale: number; zeroPoint: number }>; activations: string[]; calibBatches: number }

async function loadInto(model: Module, ref: ReferenceFile, c: RefCase, device: string): Promise<void> {
  const a = c.args as unknown as StaticArgs;
  const sd: Record<string, kiln.Tensor> = {};
  a.stateKeys.forEach((k, i) => (sd[k] = kiln.fromArray(ref.values(c.inputs[i]!), c.inputs[i]!.shape, { device })));
  model.loadStateDict(sd, { strict: false });
}

/** Elements differing, and the largest difference, between two integer arrays. */
function intDiff(got: ArrayLike<number>, want: ArrayLike<number>): { differ: number; max: number } {
  let differ = 0;
  let max = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i]! - want[i]!);
    if (d) differ++;
    max = Math.max(max, d);
  }
  return { differ, max };
}

describeReference('static post-training quantization', 'quant_static', (ref) => {
  describeEachBackend('fuseModules -> prepare -> calibrate -> convert vs PyTorch', webgpu, (device) => {
    const c = ref.cases.find((x) => x.name === 'small_cnn')!;
    const a = c.args as unknown as StaticArgs;
    const nState = a.stateKeys.length;
    const batch = (i: number) => kiln.fromArray(ref.values(c.inputs[nState + i]!), c.inputs[nState + i]!.shape, { device });
    let converted: Net;

    it('converts with every layer\'s scale and zero point equal to PyTorch\'s', async () => {
      const model = new Net();
      await model.to(device);
      await loadInto(model, ref, c, device);
      model.eval();
      const fused = q.fuseModules(model, [['conv1', 'bn1', 'relu'], ['conv2', 'bn2']]);
      expect(fused.getSubmodule('conv1')).toBeInstanceOf(q.ConvReLU2d);
      expect(model.getSubmodule('conv1')).toBeInstanceOf(Conv2d);
      const prepared = q.prepare(fused, { qconfig: q.minMaxQConfig });
      for (let i = 0; i < a.calibBatches; i++) kiln.tidy(() => prepared.call(batch(i)));
      converted = await q.convert(prepared);
      for (const [path, want] of Object.entries(a.qparams)) {
        const m = converted.getSubmodule(path) as unknown as { scale: number; zeroPoint: number };
        // The observers see float conv outputs, whose summation order differs from PyTorch's by ulps,
        // so a scale may differ in its last bits (relative 1e-6); zero points are equal.
        expect([path, m.zeroPoint]).toEqual([path, want.zeroPoint]);
        expect(Math.abs(m.scale - want.scale) / want.scale, `${path} scale`).toBeLessThanOrEqual(1e-6);
      }
    });

    it('int8 activations equal PyTorch\'s on >= 99% of elements and within one quantum on all; output within 2 quanta', async () => {
      const captured = new Map<string, kiln.QTensor>();
      for (const path of a.activations) {
        const m = converted.getSubmodule(path);
        if (m instanceof q.QFunctional) {
          const orig = m.addRelu.bind(m);
          m.addRelu = (x, y) => { const r = orig(x, y); captured.set(path, r); return r; };
        } else m.registerForwardHook((_m, _a, out) => { captured.set(path, out as kiln.QTensor); });
      }
      const x = batch(a.calibBatches);
      const out = converted.call(x);
      for (const [i, path] of a.activations.entries()) {
        const want = ref.values(c.outputs[i]!);
        const got = await captured.get(path)!.intRepr().toArray();
        const { differ, max } = intDiff(got, want);
        expect({ path, shape: captured.get(path)!.shape }).toEqual({ path, shape: c.outputs[i]!.shape });
        expect(max, `${path}: largest integer difference (${differ}/${want.length} differ)`).toBeLessThanOrEqual(1);
        expect(differ, `${path}: differing integers of ${want.length}`).toBeLessThanOrEqual(0.01 * want.length);
      }
      const fcScale = a.qparams.fc!.scale;
      const wantOut = ref.values(c.outputs[a.activations.length]!);
      const gotOut = await out.toArray();
      for (let i = 0; i < wantOut.length; i++) expect(Math.abs(gotOut[i]! - wantOut[i]!)).toBeLessThanOrEqual(2 * fcScale * (1 + 1e-6));
    });
  });
});

describe('static quantization errors', () => {
  it('prepare rejects a training-mode model; fuseModules rejects conv+bn folding in training mode', () => {
    const m = new Net();
    expect(() => q.prepare(m)).toThrow(/prepare: static post-training quantization expects an eval-mode model/);
    expect(() => q.fuseModules(m, [['conv1', 'bn1']])).toThrow(/fuseModules: Fusion only for eval!/);
    expect(() => q.fuseModules(m.eval(), [['conv1', 'fc']])).toThrow(/fuseModules: cannot fuse \[conv1, fc\]/);
  });
  it('convert before calibration names the layer', async () => {
    const prepared = q.prepare(new Net().eval());
    await expect(q.convert(prepared)).rejects.toThrow(/convert: the observer of quant has not observed any data/);
  });
});
