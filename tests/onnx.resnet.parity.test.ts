// Kiln's ONNX export of ResNet18, checked by the real tools on every backend:
// onnx.checker (full check, with shape inference) accepts every export,
// onnxruntime-node's logits equal Kiln's, the op histogram equals what
// torch.onnx.export writes for the same torchvision model (gen_onnx.py), on
// the fused and the layer-by-layer model path, opsets 13 and 17, BatchNorm
// folded or kept, the feature extractor and a replaced 10-class head; and the
// other way round, weights of PyTorch's own .onnx load into Kiln's ResNet18
// and give PyTorch's logits.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { fromArray, noGrad, type Tensor } from '@kiln/core';
import { Linear } from '@kiln/nn';
import { FeatureExtractor, resnet18, type ResNet } from '@kiln/resnet';
import { exportOnnx, loadOnnxWeights, readOnnx } from '@kiln/onnx';
import { describeEachBackend, describeWhenReady, loadReference, webgpuStatus, type ReferenceFile } from '@kiln/test-helpers';
import { REFERENCE_CACHE_DIR, referenceProblem } from '../scripts/reference-cache.mjs';
import { calibratedResnet18 } from '../packages/resnet/test/model.helpers.js';
import { checkModel, maxAbsDiff, onnxCheckerProblem, opHistogram, runOrtRuns, type Feed } from '../packages/onnx/test/tools.js';

// onnxruntime and Kiln run the same float32 graph with different summation
// orders (and ORT refolds nothing: the folded weights are Kiln's); logits of
// O(10) agree to a few 1e-6, so 1e-4 leaves a wide margin and still catches
// any wrong attribute (a pad, a stride, a missing ReLU moves logits by >1e-2).
const ORT_ATOL = 1e-4;
// Kiln vs PyTorch logits of the same weights: different arithmetic over ~10^5 terms (tests/resnet.parity uses 1e-3).
const TORCH_ATOL = 1e-3;
const DYNAMIC = { input: { 0: 'batch' }, logits: { 0: 'batch' } };

const webgpu = await webgpuStatus();
const loaded = loadReference('onnx');
const problem = loaded.ok ? (referenceProblem('resnet') ?? referenceProblem('resnet_io') ?? onnxCheckerProblem()) : loaded.reason;

function caseOf(ref: ReferenceFile, name: string) {
  const c = ref.cases.find((k) => k.name === name);
  if (!c) throw new Error(`gen_onnx.py wrote no case '${name}'`);
  const names = c.args.outputNames as string[];
  const rec = (n: string) => c.outputs[names.indexOf(n)]!;
  return { args: c.args as Record<string, any>, values: (n: string) => ref.values(rec(n)) as Float32Array, shape: (n: string) => rec(n).shape };
}

const feed = async (x: Tensor): Promise<Feed> => ({ data: (await x.toArray()) as Float32Array, dims: x.shape });
const logitsOf = async (m: { call(x: Tensor): Tensor }, x: Tensor) => {
  const y = noGrad(() => m.call(x));
  const v = (await y.toArray()) as Float32Array;
  y.dispose();
  return v;
};

describeWhenReady('ONNX export of resnet18', problem, () => {
  const ref = (loaded as { ok: true; ref: ReferenceFile }).ref;
  const hist = caseOf(ref, 'histograms').args;
  const logits = caseOf(ref, 'logits');

  describeEachBackend('exportOnnx', webgpu, (device) => {
    let model: ResNet;
    let x3: Tensor;
    let x1: Tensor;
    beforeAll(async () => {
      model = await calibratedResnet18(device);
      x3 = fromArray(logits.values('input'), logits.shape('input'), { device });
      x1 = x3.slice(0, 0, 1);
    });
    afterAll(() => {
      model?.releaseFolded();
      x1?.dispose();
      x3?.dispose();
    });

    /** Exports at batch 1, checks it, and compares onnxruntime at batch 1 and 3 with `want3` (Kiln's batch-3 output). */
    async function exportAndCompare(m: { call(x: Tensor): Tensor } & Parameters<typeof exportOnnx>[0], opts: Parameters<typeof exportOnnx>[2], want3: Float32Array, outName = 'logits') {
      const bytes = await exportOnnx(m, x1, { inputNames: ['input'], outputNames: [outName], ...opts });
      checkModel(bytes);
      const [r1, r3] = await runOrtRuns(bytes, [{ input: await feed(x1) }, { input: await feed(x3) }]);
      const per = want3.length / 3;
      const d1 = maxAbsDiff(r1![outName]!, want3.subarray(0, per));
      const d3 = maxAbsDiff(r3![outName]!, want3);
      console.log(`[onnx] ${device} ${JSON.stringify(opts)}: onnxruntime vs Kiln max |diff| batch 1 ${d1.toExponential(2)}, batch 3 ${d3.toExponential(2)}`);
      expect(d1).toBeLessThan(ORT_ATOL);
      expect(d3).toBeLessThan(ORT_ATOL);
      return bytes;
    }

    // Each path once, at one opset each (an export costs seconds): fused at 17, layer by layer at 13.
    for (const [fused, opset] of [[true, 17], [false, 13]] as const) {
      it(`${fused ? 'fused' : 'layer-by-layer'} path, opset ${opset}, dynamic batch: checker passes, histogram is torch's, onnxruntime = Kiln at batch 1 and 3`, async () => {
        model.setFuseInference(fused);
        const want3 = await logitsOf(model, x3);
        const bytes = await exportAndCompare(model, { opset, dynamicAxes: DYNAMIC }, want3);
        expect(opHistogram(bytes)).toEqual(hist.histograms[`resnet18_opset${opset}`]);
        expect(readOnnx(bytes).opsetImports).toEqual([{ domain: '', version: opset }]);
        const g = readOnnx(bytes).graph;
        expect(g.inputs[0]!.dims).toEqual(['batch', 3, 64, 64]);
        expect(g.outputs[0]!.dims).toEqual(['batch', 1000]);
        // Parameters keep their state-dict names; folded conv weights are new constants.
        expect(g.initializers.map((t) => t.name)).toEqual(expect.arrayContaining(['fc.weight', 'fc.bias']));
        // The layer-by-layer path runs every module: its node names are PyTorch's, one for one.
        if (!fused) expect(g.nodes.map((n) => n.name)).toEqual(hist.nodeNames);
        // Kiln's logits are PyTorch's (so the export is of the right model, not only self-consistent).
        expect(maxAbsDiff(want3, logits.values('logits'))).toBeLessThan(TORCH_ATOL);
      });
    }

    it('foldBatchNorm: false keeps 20 BatchNormalization nodes with the state-dict names, and still matches', async () => {
      model.setFuseInference(false);
      const want3 = await logitsOf(model, x3);
      const bytes = await exportAndCompare(model, { opset: 17, dynamicAxes: DYNAMIC, foldBatchNorm: false }, want3);
      const h = opHistogram(bytes);
      expect(h.BatchNormalization).toBe(20);
      expect(h.Conv).toBe(20);
      const names = readOnnx(bytes).graph.initializers.map((t) => t.name);
      expect(names).toEqual(expect.arrayContaining(['conv1.weight', 'bn1.weight', 'bn1.running_var', 'layer1.0.bn1.running_mean', 'layer2.0.downsample.1.bias', 'fc.bias']));
      model.setFuseInference(true);
    });

    it('the feature extractor ([B, 512]) and a replaced 10-class head export with torch\'s histograms', async () => {
      const features = new FeatureExtractor(model);
      const wantF = await logitsOf(features, x3);
      const fb = await exportAndCompare(features, { dynamicAxes: { input: { 0: 'batch' }, features: { 0: 'batch' } } }, wantF, 'features');
      expect(opHistogram(fb)).toEqual(hist.histograms.features_opset17);
      expect(readOnnx(fb).graph.outputs[0]!.dims).toEqual(['batch', 512]);

      const fc = model.fc;
      const head = new Linear(512, 10, { device });
      noGrad(() => {
        head.weight.copy_(fromArray(logits.values('head10_weight'), [10, 512], { device }));
        head.bias!.copy_(fromArray(logits.values('head10_bias'), [10], { device }));
      });
      model.fc = head;
      try {
        const want3 = await logitsOf(model, x3);
        expect(maxAbsDiff(want3, logits.values('head10_logits'))).toBeLessThan(TORCH_ATOL);
        const hb = await exportAndCompare(model, { dynamicAxes: DYNAMIC }, want3);
        expect(opHistogram(hb)).toEqual(hist.histograms.head10_opset17);
      } finally {
        model.fc = fc;
        head.dispose();
      }
    });

    it("round trip: PyTorch's own resnet18.onnx loads into Kiln's ResNet18 and gives PyTorch's logits", async () => {
      const torchOnnx = new Uint8Array(readFileSync(join(REFERENCE_CACHE_DIR, 'onnx', 'resnet18.onnx')));
      const fresh = resnet18({ device });
      const keys = loadOnnxWeights(fresh, torchOnnx);
      // 20 convs (+ their folded BatchNorm's 4 tensors each) and fc's 2.
      expect(keys.length).toBe(20 + 20 * 4 + 2);
      fresh.eval();
      const got = await logitsOf(fresh, x3);
      const d = maxAbsDiff(got, logits.values('logits'));
      console.log(`[onnx] ${device} round trip: Kiln (torch .onnx weights) vs PyTorch logits max |diff| ${d.toExponential(2)}`);
      expect(d).toBeLessThan(TORCH_ATOL);
      fresh.releaseFolded();
      fresh.dispose();
    });
  });
});
