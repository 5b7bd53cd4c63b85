// Dynamically quantized models (quantizeDynamic: int8 weights, uint8
// activations quantized per batch with reduce_range) export as PyTorch's
// exact semantics: ReduceMin/ReduceMax, the scale and zero-point arithmetic,
// Round/Clip/Cast to uint8, MatMulInteger, Cast, Mul, Add. onnx.checker
// accepts them; onnxruntime computes the same integers, so its outputs equal
// Kiln's to float rounding of the final scale (far inside 2 output quanta)
// with the same top-1, on every backend.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { fromArray, manualSeed, noGrad, randn, type Tensor } from '@kiln/core';
import { Linear, quantizeDynamic, ReLU, Sequential, type Module } from '@kiln/nn';
import type { ResNet } from '@kiln/resnet';
import { exportOnnx } from '@kiln/onnx';
import { describeEachBackend, describeWhenReady, loadReference, webgpuStatus, type ReferenceFile } from '@kiln/test-helpers';
import { referenceProblem } from '../scripts/reference-cache.mjs';
import { calibratedResnet18 } from '../packages/resnet/test/model.helpers.js';
import { checkModel, maxAbsDiff, onnxCheckerProblem, opHistogram, runOrt } from '../packages/onnx/test/tools.js';

const webgpu = await webgpuStatus();
const loaded = loadReference('onnx');
const problem = loaded.ok ? (referenceProblem('resnet') ?? referenceProblem('resnet_io') ?? onnxCheckerProblem()) : loaded.reason;

/** Argmax of each row of [rows, cols]. */
const top1 = (v: ArrayLike<number>, cols: number) => Array.from({ length: v.length / cols }, (_, r) => {
  let best = 0;
  for (let c = 1; c < cols; c++) if (v[r * cols + c]! > v[r * cols + best]!) best = c;
  return best;
});

async function compare(model: Module, x: Tensor, cols: number, atol: number): Promise<{ bytes: Uint8Array; diff: number }> {
  const want = (await noGrad(() => model.call(x) as Tensor).toArray()) as Float32Array;
  const bytes = await exportOnnx(model, x, { dynamicAxes: { input: [0], output: [0] } });
  checkModel(bytes);
  const got = (await runOrt(bytes, { input: { data: (await x.toArray()) as Float32Array, dims: x.shape } })).output as Float32Array;
  const diff = maxAbsDiff(got, want);
  expect(diff).toBeLessThan(atol);
  expect(top1(got, cols)).toEqual(top1(want, cols));
  return { bytes, diff };
}

describeWhenReady('ONNX export of dynamically quantized models', problem, () => {
  const ref = (loaded as { ok: true; ref: ReferenceFile }).ref;
  const c = ref.cases.find((k) => k.name === 'logits')!;
  const inputRec = c.outputs[(c.args.outputNames as string[]).indexOf('input')]!;

  describeEachBackend('quantizeDynamic', webgpu, (device) => {
    it('an MLP of two quantized Linears: MatMulInteger graph, onnxruntime = Kiln', async () => {
      manualSeed(4);
      const mlp = await quantizeDynamic(new Sequential(new Linear(30, 16, { device }), new ReLU(), new Linear(16, 7, { device })));
      // Outputs O(1); the only float difference is the order of the final scale multiply-add: ~1e-6.
      const { bytes } = await compare(mlp, randn([5, 30], { device }), 7, 1e-5);
      const h = opHistogram(bytes);
      expect(h.MatMulInteger).toBe(2);
      expect(h.ReduceMin).toBe(2);
      expect(h.ReduceMax).toBe(2);
    });

    let float: ResNet;
    let model: ResNet;
    let x: Tensor;
    beforeAll(async () => {
      float = await calibratedResnet18(device);
      // quantizeDynamic returns a new model (sharing the layers it keeps); the float one is unchanged.
      model = await quantizeDynamic(float);
      x = fromArray(ref.values(inputRec), inputRec.shape, { device });
    });
    afterAll(() => {
      model?.releaseFolded();
      model?.dispose();
      float?.releaseFolded();
      float?.dispose();
      x?.dispose();
    });

    it('resnet18 with its fc dynamically quantized: onnxruntime = Kiln, same top-1', async () => {
      // Logits O(10): the integer part is exact, float32 rounding of the rest stays below 1e-4.
      const { bytes, diff } = await compare(model, x, 1000, 1e-4);
      expect(opHistogram(bytes).MatMulInteger).toBe(1);
      console.log(`[onnx] ${device} dynamic-quantized resnet18: onnxruntime vs Kiln max |diff| ${diff.toExponential(2)}`);
    });
  });
});
