// A pruned ResNet18 exports with its masks applied (the weight the model
// uses, read through the same forward pre-hooks), on every backend: 20% L1
// in four convs, 25% L1-structured output channels of another, 30%
// L2-structured rows of fc. onnx.checker
// accepts it, onnxruntime computes Kiln's logits at batch 1 and 3, the file
// holds no weight_orig / weight_mask, and the weights it holds are zero
// exactly where Kiln's masks are.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { fromArray, noGrad, type Tensor } from '@kiln/core';
import { prune, type Conv2d, type Linear, type Module } from '@kiln/nn';
import type { ResNet } from '@kiln/resnet';
import { exportOnnx, onnxInitializers } from '@kiln/onnx';
import { describeEachBackend, describeWhenReady, loadReference, webgpuStatus, type ReferenceFile } from '@kiln/test-helpers';
import { referenceProblem } from '../scripts/reference-cache.mjs';
import { calibratedResnet18 } from '../packages/resnet/test/model.helpers.js';
import { checkModel, maxAbsDiff, onnxCheckerProblem, runOrtRuns } from '../packages/onnx/test/tools.js';

// As tests/onnx.resnet.parity: the same float32 graph in another summation order (measured a few 1e-6).
const ORT_ATOL = 1e-4;
const PRUNED_CONVS = ['conv1', 'layer1.0.conv1', 'layer3.1.conv1', 'layer4.1.conv2'];

const webgpu = await webgpuStatus();
const loaded = loadReference('onnx');
const problem = loaded.ok ? (referenceProblem('resnet') ?? referenceProblem('resnet_io') ?? onnxCheckerProblem()) : loaded.reason;

describeWhenReady('ONNX export of a pruned resnet18', problem, () => {
  const ref = (loaded as { ok: true; ref: ReferenceFile }).ref;
  const c = ref.cases.find((k) => k.name === 'logits')!;
  const inputRec = c.outputs[(c.args.outputNames as string[]).indexOf('input')]!;

  describeEachBackend('pruned', webgpu, (device) => {
    let model: ResNet;
    let x3: Tensor;
    let x1: Tensor;
    beforeAll(async () => {
      model = await calibratedResnet18(device);
      // A few convs (global pruning over all 20 reads every weight back: minutes on lavapipe), one of them structured.
      for (const path of PRUNED_CONVS) await prune.l1Unstructured(model.getSubmodule(path) as Conv2d, 'weight', 0.2);
      await prune.lnStructured(model.getSubmodule('layer2.0.conv2') as Conv2d, 'weight', 0.25, 1, 0);
      await prune.lnStructured(model.fc as Linear, 'weight', 0.3, 2, 0);
      x3 = fromArray(ref.values(inputRec), inputRec.shape, { device });
      x1 = x3.slice(0, 0, 1);
    }, 600_000);
    afterAll(() => {
      model?.releaseFolded();
      model?.dispose();
      x1?.dispose();
      x3?.dispose();
    });

    for (const fused of [true, false]) {
      it(`${fused ? 'fused path, BN folded' : 'layer by layer, BatchNorm kept'}: checker passes, onnxruntime = Kiln, masks applied`, async () => {
        model.setFuseInference(fused);
        const y = noGrad(() => model.call(x3));
        const want = (await y.toArray()) as Float32Array;
        y.dispose();
        const bytes = await exportOnnx(model, x1, { inputNames: ['input'], outputNames: ['logits'], dynamicAxes: { input: [0], logits: [0] }, foldBatchNorm: fused });
        checkModel(bytes);
        const [r1, r3] = await Promise.all([x1, x3].map(async (x) => ({ input: { data: (await x.toArray()) as Float32Array, dims: x.shape } }))).then((f) => runOrtRuns(bytes, f));
        expect(maxAbsDiff(r1!.logits!, want.subarray(0, 1000))).toBeLessThan(ORT_ATOL);
        expect(maxAbsDiff(r3!.logits!, want)).toBeLessThan(ORT_ATOL);

        const inits = onnxInitializers(bytes);
        expect([...inits.keys()].filter((k) => /_orig|_mask/.test(k))).toEqual([]);
        // The effective weights keep their module's name and are zero exactly where the mask is.
        const check = async (path: string, m: Module) => {
          const t = inits.get(`${path}.weight`);
          expect(t, `${path}.weight in the file`).toBeDefined();
          const mask = Array.from(await (m as unknown as { weight_mask: Tensor }).weight_mask.toArray(), Number);
          const data = Array.from(t!.data, Number);
          const zerosInFile = data.filter((v) => v === 0).length;
          const masked = mask.filter((v) => v === 0).length;
          expect(masked).toBeGreaterThan(0);
          expect(data.filter((v, i) => mask[i] === 0 && v !== 0)).toEqual([]);
          expect(zerosInFile).toBeGreaterThanOrEqual(masked);
        };
        await check('fc', model.fc);
        if (!fused) for (const path of [...PRUNED_CONVS, 'layer2.0.conv2']) await check(path, model.getSubmodule(path));
      });
    }
  });
});
