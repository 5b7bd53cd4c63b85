// `kiln export`, run in-process on gen_resnet_io.py's resnet18.pth (CPU
// backend): the file it writes passes onnx.checker, has the requested opset,
// names and dynamic batch, and onnxruntime computes Kiln's logits from it;
// with --quantize dynamic the fc is MatMulInteger, and with --quantize static
// --calibrate <images> the int8 QDQ model onnxruntime runs gives the logits
// of Kiln's int8 model calibrated on the same images (within 2 output quanta,
// same top-1).
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { fromArray, noGrad, randn } from '@kiln/core';
import { batchImages, loadWeights, resnet18 } from '@kiln/resnet';
import { quantizeDynamic } from '@kiln/nn';
import { readOnnx } from '@kiln/onnx';
import { describeWhenReady } from '@kiln/test-helpers';
import { kiln } from '../packages/resnet/test/cli.helpers.js';
import { IMAGES_DIR, RESNET18_PTH } from '../packages/resnet/test/model.helpers.js';
import { preprocessForSize, quantizeStatic } from '../packages/resnet/src/cli/export.js';
import { loadImages } from '../packages/resnet/src/cli/images.js';
import { referenceProblem } from '../scripts/reference-cache.mjs';
import { checkModel, maxAbsDiff, onnxCheckerProblem, opHistogram, runOrt } from '../packages/onnx/test/tools.js';


const tmp = mkdtempSync(join(tmpdir(), 'kiln-export-'));
/** gen_resnet_io.py's test images that calibrate the static export. */
// Two images at 32x32: ResNet18 on the CPU backend, calibrated here and again for the comparison, costs ~10 s of CPU;
// the quantized cases' 180 s limit is for a loaded machine, not their cost.
const CALIBRATION = ['rgb_300x200.jpg', 'palette_130x170.png'];

/** Argmax of each 1000-class row. */
const top1 = (v: ArrayLike<number>) => Array.from({ length: v.length / 1000 }, (_, r) => {
  let best = 0;
  for (let c = 1; c < 1000; c++) if (v[r * 1000 + c]! > v[r * 1000 + best]!) best = c;
  return best;
});

describeWhenReady('kiln export', referenceProblem('resnet_io') ?? onnxCheckerProblem(), () => {
  it('writes a checked .onnx with opset, names and dynamic batch as asked; onnxruntime gives Kiln\'s logits', async () => {
    const out = join(tmp, 'resnet18.onnx');
    const r = await kiln('export', '--weights', RESNET18_PTH, '--out', out, '--opset', '13', '--dynamic-batch', '--size', '64');
    expect(r.stderr).toMatch(/^wrote .*resnet18\.onnx: resnet18, opset 13, input \[batch, 3, 64, 64\] -> logits/);
    expect(r.code).toBe(0);
    const bytes = new Uint8Array(readFileSync(out));
    checkModel(bytes);
    const g = readOnnx(bytes);
    expect(g.opsetImports[0]!.version).toBe(13);
    expect(g.graph.inputs[0]).toMatchObject({ name: 'input', dims: ['batch', 3, 64, 64] });
    expect(g.graph.outputs[0]).toMatchObject({ name: 'logits', dims: ['batch', 1000] });
    expect(opHistogram(bytes).Conv).toBe(20);

    const model = resnet18();
    await loadWeights(model, RESNET18_PTH);
    model.eval();
    const x = randn([2, 3, 64, 64]);
    const want = (await noGrad(() => model.call(x)).toArray()) as Float32Array;
    const got = await runOrt(bytes, { input: { data: (await x.toArray()) as Float32Array, dims: x.shape } });
    // Same float32 graph, other summation order: a few 1e-6 on O(1) logits.
    expect(maxAbsDiff(got.logits!, want)).toBeLessThan(1e-4);
    model.dispose();
  });

  it('refuses an --out that is not .onnx and an unsupported opset, in one line', async () => {
    const bad = await kiln('export', '-w', RESNET18_PTH, '-o', join(tmp, 'm.txt'));
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe(`kiln: --out must end in .onnx, got '${join(tmp, 'm.txt')}'\n`);
    const opset = await kiln('export', '-w', RESNET18_PTH, '-o', join(tmp, 'm.onnx'), '--opset', '11');
    expect(opset.code).toBe(1);
    expect(opset.stderr).toMatch(/^kiln: --opset must be one of 13, 14, 15, 16, 17, got 11\n$/);
  });

  it('--quantize dynamic: the fc as MatMulInteger; onnxruntime gives the dynamically quantized model\'s logits', async () => {
    const out = join(tmp, 'dynamic.onnx');
    const r = await kiln('export', '-w', RESNET18_PTH, '-o', out, '--quantize', 'dynamic', '--size', '32');
    expect(r.stderr).toMatch(/^wrote .*dynamic\.onnx: resnet18 \(fc dynamically quantized to int8\), opset 17, input \[1, 3, 32, 32\]/);
    expect(r.code).toBe(0);
    const bytes = new Uint8Array(readFileSync(out));
    checkModel(bytes);
    expect(opHistogram(bytes)).toMatchObject({ Conv: 20, MatMulInteger: 1 });
    const model = resnet18();
    await loadWeights(model, RESNET18_PTH);
    const q = await quantizeDynamic(model.eval());
    const x = randn([1, 3, 32, 32]);
    const want = (await noGrad(() => q.call(x)).toArray()) as Float32Array;
    const got = await runOrt(bytes, { input: { data: (await x.toArray()) as Float32Array, dims: x.shape } });
    // The integers are Kiln's; float32 rounding of the convs and the final scale: as the fp32 export.
    expect(maxAbsDiff(got.logits!, want)).toBeLessThan(1e-4);
    q.dispose();
    model.dispose();
  }, 180_000);

  it('--quantize static --calibrate <images>: a checked int8 QDQ model; onnxruntime = Kiln\'s int8 model within 2 output quanta, same top-1', async () => {
    const out = join(tmp, 'static.onnx');
    const images = CALIBRATION.map((f) => join(IMAGES_DIR, f));
    const r = await kiln('export', '-w', RESNET18_PTH, '-o', out, '--quantize', 'static', '--calibrate', ...images, '--size', '32', '--dynamic-batch');
    expect(r.stderr).toMatch(/^wrote .*static\.onnx: resnet18 \(int8, static, calibrated on 2 images\), opset 17, input \[batch, 3, 32, 32\]/);
    expect(r.code).toBe(0);
    const bytes = new Uint8Array(readFileSync(out));
    checkModel(bytes);
    expect(opHistogram(bytes)).toMatchObject({ Conv: 20, Gemm: 1, QuantizeLinear: 32 });
    expect(readOnnx(bytes).graph.inputs[0]).toMatchObject({ name: 'input', dims: ['batch', 3, 32, 32] });

    // Kiln's int8 model from the same weights and calibration images, run on those images (batch 2 through the dynamic axis).
    const pre = await loadImages(images, preprocessForSize(32));
    const model = resnet18();
    await loadWeights(model, RESNET18_PTH);
    const q = await quantizeStatic(model.eval(), pre, 'cpu');
    const b = batchImages(pre);
    const x = fromArray(b.data, b.shape);
    const want = (await noGrad(() => q.call(x)).toArray()) as Float32Array;
    const got = (await runOrt(bytes, { input: { data: b.data, dims: b.shape } })).logits as Float32Array;
    const fcScale = (q.fc as unknown as { scale: number }).scale;
    expect(maxAbsDiff(got, want) / fcScale).toBeLessThanOrEqual(2 + 1e-6);
    expect(top1(got)).toEqual(top1(want));
    x.dispose();
    q.dispose();
    model.dispose();
  }, 180_000);

  it('refuses --quantize static without images, --calibrate without it, and an unknown mode, in one line', async () => {
    const o = join(tmp, 'q.onnx');
    const none = await kiln('export', '-w', RESNET18_PTH, '-o', o, '--quantize', 'static');
    expect([none.code, none.stderr]).toEqual([1, 'kiln: --quantize static needs calibration images: --calibrate <images...>\n']);
    const stray = await kiln('export', '-w', RESNET18_PTH, '-o', o, '--calibrate', join(IMAGES_DIR, CALIBRATION[0]!));
    expect([stray.code, stray.stderr]).toEqual([1, 'kiln: --calibrate is only used with --quantize static\n']);
    const mode = await kiln('export', '-w', RESNET18_PTH, '-o', o, '--quantize', 'float16');
    expect(mode.code).toBe(1);
    expect(mode.stderr).toMatch(/'--quantize <mode>' argument 'float16' is invalid\. Allowed choices are dynamic, static/);
  });
});
