// The browser tests' page (bundled by tests/helpers/browser.ts, served with
// the reference outputs under /ref/): exposes `window.kilnHarness`, which
// runs parity cases and the ResNet18 checks inside Chromium and returns
// plain JSON for the Node side to assert on.
import * as kiln from '@kiln/core';
import { getAdapterInfo, initWebGPU, type AdapterInfo } from '@kiln/kernels';
import { decodeImage, loadWeights, preprocessImage, resnet18, type ResNet } from '@kiln/resnet';
import { AUTOGRAD_OPS } from '../parity/autograd-table.js';
import { CNN_OPS } from '../parity/cnn-table.js';
import { OPS_TABLE } from '../parity/ops-grad-table.js';
import type { Table } from '../parity/table-case.js';
import { fineTuneHead } from '../../web/src/finetune.js';
import { fetchReference, namedTensor, type PageReference } from './fetch-reference.js';
import { runCaseInPage } from './run-case.js';

/**
 * WGSL guarantees sin/cos only to an absolute error of 2^-11 on [-pi, pi].
 * lavapipe is far better (the ops table's TRIG, 1e-5, holds there), but
 * Chromium's SwiftShader uses what the spec allows: measured 1.7e-4 on
 * sin(-1.463). In the page the WebGPU backend gets the spec's bound; the
 * gradient (g * cos x, |g| up to ~4 in the generator's randn) four times it.
 */
const WGSL_TRIG = { tol: { rtol: 0, atol: 2 ** -11 }, gradTol: { rtol: 0, atol: 2 ** -9 } };
const WEBGPU_OPS: Table = { ...OPS_TABLE, sin: { ...OPS_TABLE.sin!, ...WGSL_TRIG }, cos: { ...OPS_TABLE.cos!, ...WGSL_TRIG } };

const TABLES: Record<string, Table> = { ops: OPS_TABLE, cnn: CNN_OPS, autograd: AUTOGRAD_OPS };
const tableFor = (name: string, device: string): Table => (name === 'ops' && device === 'webgpu' ? WEBGPU_OPS : TABLES[name]!);

/** One case's outcome in the page. */
export interface PageCaseResult {
  name: string;
  op: string;
  /** null when it matched PyTorch. */
  error: string | null;
  ms: number;
}

/** What the ResNet18 check computed in the page. */
export interface PageResnetResult {
  /** Logits [logitRows, 1000] of gen_resnet.py's input, fused path. */
  logits: number[];
  /** The preprocessed [3, 224, 224] tensors of the image files, as decoded in the page. */
  images: Record<string, number[]>;
  /** Losses of the page's head fine-tuning (web/src/finetune.ts) on the first labels.length of those images. */
  fineTuneLosses: number[];
  ms: { load: number; logits: number; fineTune: number };
}

const refs = new Map<string, Promise<PageReference>>();
const reference = (name: string) => {
  let r = refs.get(name);
  if (!r) refs.set(name, (r = fetchReference(name)));
  return r;
};

async function fetchBytes(url: string): Promise<Uint8Array> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`GET ${url}: ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

const harness = {
  /** Initialises WebGPU; resolves to the adapter info, or the reason it failed. */
  async init(): Promise<{ adapter: AdapterInfo | null; error: string | null }> {
    try {
      await initWebGPU();
      return { adapter: getAdapterInfo(), error: null };
    } catch (e) {
      return { adapter: null, error: (e as Error).message };
    }
  },

  /** Runs the named cases of reference `refName` through `table` on `device`. */
  async parity(refName: string, table: string, names: string[], device: string): Promise<PageCaseResult[]> {
    if (device === 'webgpu') await initWebGPU();
    const ref = await reference(refName);
    const out: PageCaseResult[] = [];
    for (const name of names) {
      const c = ref.cases.find((k) => k.name === name);
      const start = performance.now();
      let error: string | null;
      try {
        error = c ? await runCaseInPage(ref, c, device, tableFor(table, device)) : `no case '${name}' in ${refName}`;
      } catch (e) {
        error = `threw: ${(e as Error).message}`;
      }
      out.push({ name, op: c?.op ?? '?', error, ms: performance.now() - start });
    }
    return out;
  },

  /**
   * The seeded, BN-calibrated resnet18 of the Node tests, loaded from its
   * .pth in the page: logits of the first `logitRows` images of
   * gen_resnet.py's input, the preprocessing of `imageFiles` (decoded here),
   * and `steps` head fine-tuning steps on the first `labels.length` of them.
   */
  async resnet(device: string, imageFiles: string[], labels: string[], opts: { steps: number; lr: number; logitRows: number }): Promise<PageResnetResult> {
    if (device === 'webgpu') await initWebGPU();
    let t = performance.now();
    const model: ResNet = resnet18({ device });
    await loadWeights(model, await fetchBytes('/ref/resnet_io/weights/resnet18.pth'));
    await loadWeights(model, await fetchBytes('/ref/resnet/bn_calibration.safetensors'), { strict: false });
    model.eval();
    const load = performance.now() - t;

    t = performance.now();
    const input = namedTensor(await reference('resnet'), 'logits', 'input');
    const logits: number[] = [];
    for (let i = 0; i < opts.logitRows; i++) {
      const per = input.values.length / input.shape[0]!;
      const x = kiln.fromArray(input.values.subarray(i * per, (i + 1) * per), [1, ...input.shape.slice(1)], { device });
      const y = kiln.noGrad(() => model.call(x));
      logits.push(...(await y.toArray()));
      x.dispose();
      y.dispose();
    }
    const logitsMs = performance.now() - t;

    const images: Record<string, number[]> = {};
    const tensors = [];
    for (const file of imageFiles) {
      const tensor = preprocessImage(decodeImage(await fetchBytes(`/ref/resnet_io/images/${file}`)));
      images[file] = Array.from(tensor.data);
      tensors.push(tensor);
    }
    t = performance.now();
    const { losses } = await fineTuneHead(model, tensors.slice(0, labels.length), labels, device, { steps: opts.steps, lr: opts.lr });
    const fineTune = performance.now() - t;
    model.dispose();
    return { logits, images, fineTuneLosses: losses, ms: { load, logits: logitsMs, fineTune } };
  },
};

/** The harness, as tests call it through page.evaluate. */
export type KilnHarness = typeof harness;
(globalThis as unknown as { kilnHarness: KilnHarness }).kilnHarness = harness;
document.body.dataset.ready = 'true';
