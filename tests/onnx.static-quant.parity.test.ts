// A statically quantized ResNet18 (quantizableResnet18 -> fuseModel ->
// prepare -> calibrate -> convert, on gen_quant_resnet.py's seeded weights and
// calibration batches) exports in QDQ form: uint8 activations, each conv /
// residual add / pooling / fc wrapped in DequantizeLinear ... QuantizeLinear,
// int8 weight initializers with per-channel scales (axis 0) and int32 biases;
// the input and the residual adds quantize as Kiln does, a Mul by the
// reciprocal scale and a QuantizeLinear of scale 1. onnx.checker accepts it;
// onnxruntime fuses every conv / fc group into QLinearConv / QGemm (Kiln's
// requantization, core's requant.ts) and its logits equal Kiln's int8 model's
// bit for bit on every backend (tests/onnx.static-quant.ort-exact.test.ts
// checks every layer on 200 inputs). One calibrated model per backend serves
// every case.
import { afterAll, beforeAll, expect, it } from 'vitest';
import * as kiln from '@kiln/core';
import { quantization as q, skipInit } from '@kiln/nn';
import { quantizableResnet18, type QuantizableResNet } from '@kiln/resnet';
import { exportOnnx, onnxInitializers, readOnnx } from '@kiln/onnx';
import { describeEachBackend, describeWhenReady, loadReference, webgpuStatus, type ReferenceFile } from '@kiln/test-helpers';
import { checkModel, onnxCheckerProblem, opHistogram, ortOptimizedModel, runOrt } from '../packages/onnx/test/tools.js';

const webgpu = await webgpuStatus();
const loaded = loadReference('quant_resnet');
const problem = loaded.ok ? onnxCheckerProblem() : loaded.reason;

interface StaticArgs { stateKeys: string[]; calibBatches: number }

/** Argmax of each row of [rows, cols]. */
const top1 = (v: ArrayLike<number>, cols: number) => Array.from({ length: v.length / cols }, (_, r) => {
  let best = 0;
  for (let c = 1; c < cols; c++) if (v[r * cols + c]! > v[r * cols + best]!) best = c;
  return best;
});

describeWhenReady('ONNX export of a statically quantized ResNet18 (QDQ)', problem, () => {
  const ref = (loaded as { ok: true; ref: ReferenceFile }).ref;
  const c = ref.cases[0]!;
  const a = c.args as unknown as StaticArgs;
  const nState = a.stateKeys.length;

  describeEachBackend('quantizable resnet18, int8', webgpu, (device) => {
    const batch = (i: number) => kiln.fromArray(ref.values(c.inputs[nState + i]!), c.inputs[nState + i]!.shape, { device });
    let model: QuantizableResNet;
    let x: kiln.Tensor;
    let want: Float32Array;
    let bytes: Uint8Array;

    beforeAll(async () => {
      // Weights are loaded next: skip the initial draws.
      model = skipInit(() => quantizableResnet18({ device }));
      const sd: Record<string, kiln.Tensor> = {};
      a.stateKeys.forEach((k, i) => (sd[k] = kiln.fromArray(ref.values(c.inputs[i]!), c.inputs[i]!.shape, { device })));
      model.loadStateDict(sd, { strict: false });
      model.eval().fuseModel();
      q.prepare(model, { inplace: true });
      for (let i = 0; i < a.calibBatches; i++) kiln.tidy(() => model.call(batch(i)));
      await q.convert(model, { inplace: true });
      x = batch(a.calibBatches);
      want = (await kiln.noGrad(() => model.call(x) as kiln.Tensor).toArray()) as Float32Array;
      bytes = await exportOnnx(model, x, { opset: 17, dynamicAxes: { input: [0], output: [0] } });
    });
    afterAll(() => {
      model?.dispose();
      x?.dispose();
    });

    it('passes onnx.checker, with int8 weights (per-channel, axis 0), int32 biases and QDQ around every conv, add and pool', async () => {
      checkModel(bytes);
      const h = opHistogram(bytes);
      // 20 convs + fc, each with its weight and bias DQ; 8 residual adds (2 DQ each); max and average pooling; the output DQ;
      // the input and the 8 adds quantize through a Mul by the reciprocal scale.
      expect(h).toMatchObject({ Conv: 20, Gemm: 1, Add: 8, Relu: 17, MaxPool: 1, GlobalAveragePool: 1, Flatten: 1, Mul: 9 });
      expect(h.QuantizeLinear).toBe(1 + 20 + 8 + 2 + 1);
      expect(h.DequantizeLinear).toBe(21 * 3 + 8 * 2 + 2 + 1);
      const inits = onnxInitializers(bytes);
      expect(inits.get('conv1.weight')?.dtype).toBe('int8');
      expect(inits.get('fc.weight')?.dtype).toBe('int8');
      const g = readOnnx(bytes).graph;
      const dqw = g.nodes.find((n) => n.opType === 'DequantizeLinear' && n.input[0] === 'layer1.0.conv1.weight')!;
      expect(dqw.attribute.find((t) => t.name === 'axis')?.i).toBe(0);
      const biases = g.nodes.filter((n) => n.opType === 'DequantizeLinear' && inits.get(n.input[0]!)?.dtype === 'int32');
      expect(biases.length).toBe(21);
    });

    it('exports at opset 13 too (per-axis DequantizeLinear is opset 13\'s), accepted by onnx.checker', async () => {
      const b13 = await exportOnnx(model, x, { opset: 13 });
      checkModel(b13);
      expect(readOnnx(b13).opsetImports[0]!.version).toBe(13);
    });

    it('onnxruntime fuses every conv and fc group into its int8 kernels (QLinearConv, QGemm); the adds run as float ops', async () => {
      const h = opHistogram(await ortOptimizedModel(bytes));
      // The residual adds stay DequantizeLinear x2 -> Add -> Relu -> Mul -> QuantizeLinear: Kiln's arithmetic, not QLinearAdd's.
      expect(h).toMatchObject({ QLinearConv: 20, QGemm: 1, QLinearGlobalAveragePool: 1, MaxPool: 1, Add: 8, Mul: 9, QuantizeLinear: 9, DequantizeLinear: 17 });
      expect(h.Conv).toBeUndefined();
      expect(h.QLinearAdd).toBeUndefined();
    });

    it('onnxruntime\'s logits equal Kiln\'s int8 model\'s bit for bit, same top-1 on every test image', async () => {
      const got = (await runOrt(bytes, { input: { data: (await x.toArray()) as Float32Array, dims: x.shape } })).output as Float32Array;
      const fcScale = (model.fc as unknown as { scale: number }).scale;
      let worst = 0;
      for (let k = 0; k < want.length; k++) worst = Math.max(worst, Math.abs(got[k]! - want[k]!));
      console.log(`[onnx] ${device} static int8 resnet18 (QDQ): onnxruntime vs Kiln max |diff| ${worst.toExponential(3)} = ${(worst / fcScale).toFixed(2)} output quanta`);
      expect(Array.from(got)).toEqual(Array.from(want));
      const classes = x.shape[0] ? want.length / x.shape[0] : 0;
      expect(top1(got, classes)).toEqual(top1(want, classes));
    });
  });
});
