// A channel-shrunk ResNet18 (pruneInnerChannels 30% -> shrinkInnerChannels:
// every BasicBlock's conv1 / bn1 / conv2 narrower) exports as the smaller
// graph it computes, on every backend: onnx.checker accepts it, the file's
// convs have the shrunk shapes, and onnxruntime's logits equal Kiln's within
// 1e-4 at batch 2 and, through the dynamic axis, batch 1, fused (BN folded)
// and layer by layer (BatchNormalization kept).
import { afterAll, beforeAll, expect, it } from 'vitest';
import { manualSeed, noGrad, randn, type Tensor } from '@kiln/core';
import { innerWidths, pruneInnerChannels, resnet18, shrinkInnerChannels, type ResNet } from '@kiln/resnet';
import { exportOnnx, onnxInitializers } from '@kiln/onnx';
import { describeEachBackend, describeWhenReady, webgpuStatus } from '@kiln/test-helpers';
import { checkModel, maxAbsDiff, onnxCheckerProblem, runOrtRuns } from '../packages/onnx/test/tools.js';
import { randomizeBatchNorm } from './prune.helpers.js';

// As tests/onnx.resnet.parity: the same float32 graph in another summation order (logits O(1), measured ~1e-6).
const ORT_ATOL = 1e-4;

const webgpu = await webgpuStatus();

/** A seeded 10-class resnet18 with non-trivial BatchNorm statistics, shrunk by 30% inner channels on the CPU, then moved to `device`. */
async function shrunkResnet(device: string): Promise<ResNet> {
  manualSeed(21);
  const model = resnet18({ numClasses: 10 });
  randomizeBatchNorm(model);
  model.eval();
  await pruneInnerChannels(model, 0.3);
  await shrinkInnerChannels(model);
  await model.to(device);
  return model;
}

describeWhenReady('ONNX export of a channel-shrunk resnet18', onnxCheckerProblem(), () => {
  describeEachBackend('shrunk', webgpu, (device) => {
    let model: ResNet;
    let x2: Tensor;
    let x1: Tensor;
    beforeAll(async () => {
      model = await shrunkResnet(device);
      manualSeed(5);
      x2 = randn([2, 3, 32, 32], { device });
      x1 = x2.slice(0, 0, 1);
    }, 300_000);
    afterAll(() => {
      model?.releaseFolded();
      model?.dispose();
      x1?.dispose();
      x2?.dispose();
    });

    for (const fused of [true, false]) {
      it(`${fused ? 'fused path, BN folded' : 'layer by layer, BatchNorm kept'}: checker passes, shrunk shapes in the file, onnxruntime = Kiln`, async () => {
        model.setFuseInference(fused);
        const y = noGrad(() => model.call(x2));
        const want = (await y.toArray()) as Float32Array;
        y.dispose();
        const bytes = await exportOnnx(model, x2, { inputNames: ['input'], outputNames: ['logits'], dynamicAxes: { input: [0], logits: [0] }, foldBatchNorm: fused });
        checkModel(bytes);
        if (!fused) {
          const inits = onnxInitializers(bytes);
          const w = innerWidths(model);
          expect(inits.get('layer2.0.conv1.weight')?.shape).toEqual([w['layer2.0']!, 64, 3, 3]);
          expect(inits.get('layer2.0.bn1.running_mean')?.shape).toEqual([w['layer2.0']!]);
          expect(inits.get('layer2.0.conv2.weight')?.shape).toEqual([128, w['layer2.0']!, 3, 3]);
        }
        const feeds = await Promise.all([x2, x1].map(async (x) => ({ input: { data: (await x.toArray()) as Float32Array, dims: x.shape } })));
        const [r2, r1] = await runOrtRuns(bytes, feeds);
        const d2 = maxAbsDiff(r2!.logits!, want);
        console.log(`[onnx] ${device} shrunk resnet18 (${fused ? 'fused' : 'unfused'}): onnxruntime vs Kiln max |diff| ${d2.toExponential(2)}`);
        expect(d2).toBeLessThan(ORT_ATOL);
        expect(maxAbsDiff(r1!.logits!, want.subarray(0, 10))).toBeLessThan(ORT_ATOL);
      });
    }
  });
});
