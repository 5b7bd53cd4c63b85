// `kiln export`, run in-process on gen_resnet_io.py's resnet18.pth (CPU
// backend): the file it writes passes onnx.checker, has the requested opset,
// names and dynamic batch, and onnxruntime computes Kiln's logits from it.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { noGrad, randn } from '@kiln/core';
import { loadWeights, resnet18 } from '@kiln/resnet';
import { readOnnx } from '@kiln/onnx';
import { describeWhenReady } from '@kiln/test-helpers';
import { kiln } from '../packages/resnet/test/cli.helpers.js';
import { RESNET18_PTH } from '../packages/resnet/test/model.helpers.js';
import { referenceProblem } from '../scripts/reference-cache.mjs';
import { checkModel, maxAbsDiff, onnxCheckerProblem, opHistogram, runOrt } from '../packages/onnx/test/tools.js';


const tmp = mkdtempSync(join(tmpdir(), 'kiln-export-'));

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
});
