// ResNet18 in headless Chromium on its WebGPU adapter against Node (Dawn)
// and PyTorch: the .pth loaded from bytes in the page, the logits of
// gen_resnet.py's input, the page-side decoding and preprocessing of PNG
// and JPEG files, and the page's own head fine-tuning (web/src/finetune.ts).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { fromArray, noGrad } from '@kiln/core';
import { decodeImage, preprocessImage, type ResNet } from '@kiln/resnet';
import { expectClose, webgpuStatus } from '@kiln/test-helpers';
import { IMAGES_DIR, calibratedResnet18, describeResnetReference, maxAbsDiff, topk } from '../packages/resnet/test/model.helpers.js';
import { fineTuneHead } from '../web/src/finetune.js';
import { describeBrowser, openHarness } from './helpers/browser.js';
import type { KilnHarness, PageResnetResult } from './browser/harness.js';

/** Kiln in the page vs Kiln in Node: the same kernels' arithmetic on two drivers; float32 sums over ~10^5 terms reordered. */
const NODE_LOGITS_ATOL = 1e-4;
/** Kiln vs PyTorch, as tests/resnet.parity.test.ts states it. */
const TORCH_LOGITS_ATOL = 1e-3;
/** Fine-tuning losses (~log 2 for two classes) from features that agree to ~1e-5. */
const LOSS_TOL = { rtol: 1e-5, atol: 1e-5 };

// SwiftShader runs a ResNet18 forward in seconds: one reference image for
// the logits, two fine-tuning images, and a third file (JPEG) only decoded.
const IMAGES = ['rgb_300x200.png', 'palette_130x170.png', 'rgb_300x200.jpg'];
const LABELS = ['stripes', 'palette'];
const TUNE = { steps: 3, lr: 1e-3 };
const LOGIT_ROWS = 1;

const webgpu = await webgpuStatus();
const nodeDevice = webgpu.ok ? 'webgpu' : 'cpu';
const harness = await openHarness();

describeBrowser('resnet18 in Chromium', harness, ({ page, logs }) => {
  describeResnetReference('vs Node and PyTorch', (ref) => {
    const logitsCase = ref.case('logits');
    let inPage: PageResnetResult;
    let model: ResNet;

    beforeAll(async () => {
      inPage = await page.evaluate(
        (a: { images: string[]; labels: string[]; tune: typeof TUNE; rows: number }) =>
          (globalThis as unknown as { kilnHarness: KilnHarness }).kilnHarness.resnet('webgpu', a.images, a.labels, { ...a.tune, logitRows: a.rows }),
        { images: IMAGES, labels: LABELS, tune: TUNE, rows: LOGIT_ROWS },
      );
      console.log(`[browser] resnet18 in the page: load ${inPage.ms.load.toFixed(0)} ms, ${LOGIT_ROWS} forward(s) ${inPage.ms.logits.toFixed(0)} ms, fine-tune ${inPage.ms.fineTune.toFixed(0)} ms`);
      model = await calibratedResnet18(nodeDevice);
    }, 600_000);

    it(`logits of the reference input equal Node's (${nodeDevice}) within ${NODE_LOGITS_ATOL} and PyTorch's within ${TORCH_LOGITS_ATOL}`, async () => {
      expect(inPage.logits.length, logs.slice(-3).join('\n')).toBe(1000 * LOGIT_ROWS);
      const input = logitsCase.values('input');
      const shape = logitsCase.shape('input');
      const per = input.length / shape[0]!;
      const node: number[] = [];
      for (let i = 0; i < LOGIT_ROWS; i++) {
        const x = fromArray(input.subarray(i * per, (i + 1) * per), [1, ...shape.slice(1)], { device: nodeDevice });
        const y = noGrad(() => model.call(x));
        node.push(...(await y.toArray()));
        x.dispose();
        y.dispose();
      }
      const torch = logitsCase.values('logits').subarray(0, 1000 * LOGIT_ROWS);
      console.log(`[browser] logits max |page - node| ${maxAbsDiff(inPage.logits, node).toExponential(2)}, max |page - torch| ${maxAbsDiff(inPage.logits, torch).toExponential(2)}`);
      expectClose(inPage.logits, node, { rtol: 0, atol: NODE_LOGITS_ATOL }, 'page vs Node logits');
      expectClose(inPage.logits, torch, { rtol: 0, atol: TORCH_LOGITS_ATOL }, 'page vs PyTorch logits');
      expect(topk(inPage.logits, 1000, 5)).toEqual(topk(torch, 1000, 5));
    }, 600_000);

    it('decodes and preprocesses PNG (palette too) and JPEG in the page exactly as in Node', () => {
      for (const file of IMAGES) {
        const node = preprocessImage(decodeImage(new Uint8Array(readFileSync(join(IMAGES_DIR, file)))));
        expect(inPage.images[file]!.length, file).toBe(3 * 224 * 224);
        expect(maxAbsDiff(inPage.images[file]!, node.data), file).toBe(0);
      }
    });

    it(`the page's head fine-tuning (${TUNE.steps} SGD steps) gives Node's losses`, async () => {
      const tensors = IMAGES.slice(0, LABELS.length).map((f) => preprocessImage(decodeImage(new Uint8Array(readFileSync(join(IMAGES_DIR, f))))));
      const { losses } = await fineTuneHead(model, tensors, LABELS, nodeDevice, TUNE);
      console.log(`[browser] fine-tune losses page ${inPage.fineTuneLosses.map((l) => l.toFixed(6)).join(', ')}, node ${losses.map((l) => l.toFixed(6)).join(', ')}; max |diff| ${maxAbsDiff(inPage.fineTuneLosses, losses).toExponential(2)}`);
      expect(inPage.fineTuneLosses.length).toBe(TUNE.steps);
      expectClose(inPage.fineTuneLosses, losses, LOSS_TOL, 'fine-tuning losses');
      expect(losses.at(-1)!).toBeLessThan(losses[0]!);
    }, 600_000);
  });
});
