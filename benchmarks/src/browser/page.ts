/**
 * The `browser` suite's page: Kiln and TF.js WebGPU in one page, on the one
 * adapter Chromium gives (SwiftShader in headless CI), running the very
 * networks of the Node suites (KilnResNet18Eval and TfjsResNet18 on the same
 * host-folded weights) and GEMM. Outputs are compared before anything is
 * timed; times use the suites' own timeRuns policy.
 */
import { fromArray, readSafetensors, tidy, type Tensor } from '@kiln/core';
import { initWebGPU, type WebGPUBackend } from '@kiln/kernels';
import { TfjsPeer } from '../peers/tfjs.js';
import { KilnResNet18Eval } from '../resnet18.js';
import { timeRuns, type RunPolicy } from '../timing.js';
import type { HostTensor, ResNetAssets } from '../weights.js';

/** One side of a case. */
export interface PageTiming {
  [key: string]: unknown;
  ms?: number;
  minMs?: number;
  runs?: number;
  error?: string;
}

/** One case measured in the page. */
export interface PageCase {
  kiln: PageTiming;
  tfjs: PageTiming;
  /** max |Kiln - reference| (PyTorch's logits for ResNet18, float64 on the host for GEMM). */
  kilnDiff?: number;
  /** max |TF.js - Kiln|. */
  tfjsDiff?: number;
}

let kiln: WebGPUBackend;
let tfjs: TfjsPeer;

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = a.length === b.length ? 0 : Infinity;
  for (let i = 0; i < a.length && m < Infinity; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

async function time(run: () => Promise<void>, policy: RunPolicy): Promise<PageTiming> {
  try {
    const t = await timeRuns(run, policy);
    return { ms: t.ms, minMs: t.minMs, runs: t.runs };
  } catch (e) {
    return { error: (e as Error).message.split('\n')[0] };
  }
}

/** A deterministic [n, n] matrix in [-1, 1) (both libraries get the same numbers). */
function matrix(n: number, seed: number): Float32Array {
  const out = new Float32Array(n * n);
  let s = seed >>> 0;
  for (let i = 0; i < out.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

const bench = {
  /** Initialises both libraries on navigator.gpu; resolves to the adapter Kiln got. */
  async setup(): Promise<{ adapter: WebGPUBackend['info']; tfjs: string }> {
    kiln = await initWebGPU();
    tfjs = await TfjsPeer.create((navigator as Navigator & { gpu: GPU }).gpu);
    return { adapter: kiln.info, tfjs: tfjs.version };
  },

  /** ResNet18 eval at `batch` from the served assets (params, input, PyTorch's logits). */
  async resnet(batch: number, policy: RunPolicy): Promise<PageCase> {
    const file = readSafetensors(new Uint8Array(await (await fetch('/assets/resnet18.safetensors')).arrayBuffer()));
    const host = (name: string): HostTensor => ({ shape: file.tensors.get(name)!.shape, data: file.tensors.get(name)!.data as Float32Array });
    const params = new Map([...file.tensors.keys()].filter((k) => !k.startsWith('bench.')).map((k) => [k, host(k)]));
    const input = host('bench.input');
    const assets = { params, input, labels: [], torchLogits: null, torchTrainLoss: null, sgdLr: 0, onnxPath: null, source: 'torch', unavailable: null } as ResNetAssets;
    const per = input.data.length / input.shape[0]!;
    const x = fromArray(input.data.subarray(0, batch * per), [batch, ...input.shape.slice(1)], { device: 'webgpu' });
    const model = new KilnResNet18Eval(assets, 'webgpu');
    const tf = tfjs.resnet(assets);
    try {
      const logits = (await tidy(() => model.forward(x)).toArray()) as Float32Array;
      const torch = file.tensors.has('bench.torch_logits') ? host('bench.torch_logits').data.subarray(0, batch * 1000) : null;
      const tfLogits = await tf.logits(batch);
      const out: PageCase = { kiln: {}, tfjs: {}, tfjsDiff: maxAbsDiff(tfLogits, logits) };
      if (torch) out.kilnDiff = maxAbsDiff(logits, torch);
      out.kiln = await time(async () => {
        tidy(() => {
          model.forward(x);
        });
        await kiln.sync();
      }, policy);
      const runner = tf.forwardRunner(batch);
      out.tfjs = await time(() => runner.run(), policy);
      runner.dispose();
      return out;
    } finally {
      x.dispose();
      tf.dispose();
    }
  },

  /** C = A·B for [n, n] float32 matrices; outputs checked on a sample of entries against float64 on the host. */
  async gemm(n: number, policy: RunPolicy): Promise<PageCase> {
    const [ha, hb] = [matrix(n, 1), matrix(n, 2)];
    const a = fromArray(ha, [n, n], { device: 'webgpu' });
    const b = fromArray(hb, [n, n], { device: 'webgpu' });
    const held: Tensor[] = [a, b];
    try {
      const c = a.matmul(b);
      held.push(c);
      const kc = (await c.toArray()) as Float32Array;
      const ta = tfjs.tf.tensor2d(ha, [n, n]);
      const tb = tfjs.tf.tensor2d(hb, [n, n]);
      const tc = tfjs.tf.matMul(ta, tb);
      const tfc = (await tc.data()) as Float32Array;
      tfjs.tf.dispose([ta, tb, tc]);
      let kilnDiff = 0;
      for (let k = 0; k < 64; k++) {
        const i = (k * 7919) % n;
        const j = (k * 104729) % n;
        let ref = 0;
        for (let t = 0; t < n; t++) ref += ha[i * n + t]! * hb[t * n + j]!;
        kilnDiff = Math.max(kilnDiff, Math.abs(kc[i * n + j]! - ref));
      }
      const out: PageCase = { kiln: {}, tfjs: {}, kilnDiff, tfjsDiff: maxAbsDiff(tfc, kc) };
      out.kiln = await time(async () => {
        tidy(() => {
          a.matmul(b);
        });
        await kiln.sync();
      }, policy);
      const runner = tfjs.gemm(n);
      out.tfjs = await time(() => runner.run(), policy);
      runner.dispose();
      return out;
    } finally {
      for (const t of held) t.dispose();
    }
  },
};

/** The page's API, called through page.evaluate. */
export type BrowserBench = typeof bench;
(globalThis as unknown as { kilnBench: BrowserBench }).kilnBench = bench;
document.body.dataset.ready = 'true';
