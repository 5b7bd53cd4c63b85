// Static post-training quantization of ResNet18 vs torchvision's quantizable
// resnet18 (tests/reference/gen_quant_resnet.py, engine qnnpack: int32 bias,
// float32 multiplier, as ONNX QLinearConv and Kiln): the same seeded float
// weights, fuseModel(), the same MinMax qconfig and calibration batches,
// convert. Every observed layer's zero point equals PyTorch's and its scale
// agrees to 1e-6 relative (observers see float convs whose summation order
// differs by ulps); the integers of the quantized input, stem, max-pool,
// every block, avg-pool and fc equal PyTorch's on >= 99% of elements and
// are within one quantum on all; the logits are within 2 output quanta and
// the top-1 class is PyTorch's on every test image. Both backends.
import { expect, it } from 'vitest';
import * as kiln from '@kiln/core';
import { quantization as q, skipInit } from '@kiln/nn';
import { quantizableResnet18, type QuantizableResNet } from '@kiln/resnet';
import { describeEachBackend, webgpuStatus } from './helpers/env.js';
import { describeReference } from './helpers/reference.js';

const webgpu = await webgpuStatus();

interface StaticArgs { stateKeys: string[]; qparams: Record<string, { scale: number; zeroPoint: number }>; activations: string[]; calibBatches: number }

const argmax = (v: ArrayLike<number>, row: number, n: number) => {
  let best = 0;
  for (let j = 1; j < n; j++) if (v[row * n + j]! > v[row * n + best]!) best = j;
  return best;
};

describeReference('ResNet18 static quantization', 'quant_resnet', (ref) => {
  describeEachBackend('quantizable resnet18: fuseModel -> prepare -> calibrate -> convert vs torchvision', webgpu, (device) => {
    const c = ref.cases[0]!;
    const a = c.args as unknown as StaticArgs;
    const nState = a.stateKeys.length;
    const batch = (i: number) => kiln.fromArray(ref.values(c.inputs[nState + i]!), c.inputs[nState + i]!.shape, { device });
    let converted: QuantizableResNet;

    it('converts with PyTorch\'s scales and zero points for every layer', async () => {
      // Weights are loaded next: skip the initial draws.
      const model = skipInit(() => quantizableResnet18({ device }));
      const sd: Record<string, kiln.Tensor> = {};
      a.stateKeys.forEach((k, i) => (sd[k] = kiln.fromArray(ref.values(c.inputs[i]!), c.inputs[i]!.shape, { device })));
      model.loadStateDict(sd, { strict: false });
      model.eval().fuseModel();
      const prepared = q.prepare(model, { qconfig: q.minMaxQConfig, inplace: true });
      for (let i = 0; i < a.calibBatches; i++) kiln.tidy(() => prepared.call(batch(i)));
      converted = await q.convert(prepared, { inplace: true });
      for (const [path, want] of Object.entries(a.qparams)) {
        const m = converted.getSubmodule(path) as unknown as { scale: number; zeroPoint: number };
        expect([path, m.zeroPoint]).toEqual([path, want.zeroPoint]);
        expect(Math.abs(m.scale - want.scale) / want.scale, `${path} scale`).toBeLessThanOrEqual(1e-6);
      }
    });

    it('with its own observed scales: the top-1 class of every test image is PyTorch\'s int8 model\'s', async () => {
      const logits = await converted.call(batch(a.calibBatches)).toArray();
      const want = ref.values(c.outputs[a.activations.length]!);
      const classes = c.outputs[a.activations.length]!.shape[1]!;
      let worst = 0;
      for (let k = 0; k < want.length; k++) worst = Math.max(worst, Math.abs(logits[k]! - want[k]!));
      console.log(`[quant.resnet ${device}] own scales: int8 logits vs PyTorch int8: max ${worst.toExponential(3)} (${(worst / a.qparams.fc!.scale).toFixed(2)} output quanta)`);
      for (let r = 0; r < want.length / classes; r++) expect(argmax(logits, r, classes), `image ${r} top-1`).toBe(argmax(want, r, classes));
    });

    it('with PyTorch\'s scales: every activation within one quantum (>= 99% equal), logits within 2 quanta, same top-1', async () => {
      // Observers see float convs whose summation order differs from PyTorch's, so observed scales differ in their
      // last bits (checked above) and tie-breaking differences compound layer by layer. With PyTorch's scales
      // installed the int8 arithmetic itself is compared (on lavapipe it is bit-exact).
      for (const [path, want] of Object.entries(a.qparams)) Object.assign(converted.getSubmodule(path), { scale: want.scale, zeroPoint: want.zeroPoint });
      const captured = new Map<string, kiln.QTensor>();
      for (const path of a.activations) converted.getSubmodule(path).registerForwardHook((_m, _a, out) => { captured.set(path, out as kiln.QTensor); });
      const out = converted.call(batch(a.calibBatches));
      for (const [i, path] of a.activations.entries()) {
        const want = ref.values(c.outputs[i]!);
        const got = await captured.get(path)!.intRepr().toArray();
        let differ = 0;
        let max = 0;
        for (let k = 0; k < want.length; k++) {
          const d = Math.abs(got[k]! - want[k]!);
          if (d) differ++;
          max = Math.max(max, d);
        }
        expect(max, `${path}: largest integer difference (${differ}/${want.length} differ)`).toBeLessThanOrEqual(1);
        expect(differ, `${path}: differing integers of ${want.length}`).toBeLessThanOrEqual(0.01 * want.length);
      }
      const logits = await out.toArray();
      const wantLogits = ref.values(c.outputs[a.activations.length]!);
      const floatLogits = ref.values(c.outputs[a.activations.length + 1]!);
      const fcScale = a.qparams.fc!.scale;
      let worst = 0;
      for (let k = 0; k < wantLogits.length; k++) worst = Math.max(worst, Math.abs(logits[k]! - wantLogits[k]!));
      expect(worst / fcScale, 'logit difference in output quanta').toBeLessThanOrEqual(2 + 1e-6);
      const [n, classes] = out.shape as [number, number];
      for (let r = 0; r < n; r++) expect(argmax(logits, r, classes), `image ${r} top-1`).toBe(argmax(wantLogits, r, classes));
      let floatErr = 0;
      for (let k = 0; k < floatLogits.length; k++) floatErr = Math.max(floatErr, Math.abs(logits[k]! - floatLogits[k]!));
      console.log(`[quant.resnet ${device}] int8 vs PyTorch int8 logits: max ${worst.toExponential(3)} (${(worst / fcScale).toFixed(2)} quanta); int8 vs fp32 logits: max ${floatErr.toFixed(4)}`);
    });
  });
});
