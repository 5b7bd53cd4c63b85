/**
 * Peer: ONNX Runtime for Node on the CPU, running two exports of the same
 * seeded ResNet18: torch.onnx.export's (ORT folds BatchNorm itself at graph
 * optimisation) and Kiln's own (@kiln/onnx exportOnnx of @kiln/resnet's
 * model loaded with the same weights, BatchNorm folded by Kiln). Both must
 * compute the same logits; the suite reports how far apart they are.
 */
import os from 'node:os';
import type { InferenceSession } from 'onnxruntime-node';
import { zeros } from '@kiln/core';
import { inputBatch, type ResNetAssets } from '../weights.js';

type Ort = typeof import('onnxruntime-node');

/** Kiln's own export of the assets' ResNet18: opset 17, input `input` [batch, 3, 224, 224], output `logits`. */
export async function kilnExport(assets: ResNetAssets): Promise<Uint8Array> {
  // Loaded here, not at the top: suites that never reach ONNX Runtime do not load the exporter.
  const { loadRawWeights, resnetForWeights } = await import('@kiln/resnet');
  const { exportOnnx } = await import('@kiln/onnx');
  const raw = new Map([...assets.params].map(([k, t]) => [k, { dtype: 'float32' as const, shape: t.shape, data: t.data }]));
  const { model } = resnetForWeights(raw, { device: 'cpu' });
  loadRawWeights(model, raw, { strict: false });
  const dummy = zeros([1, 3, 224, 224], { device: 'cpu' });
  try {
    return await exportOnnx(model.eval(), dummy, { opset: 17, inputNames: ['input'], outputNames: ['logits'], dynamicAxes: { input: { 0: 'batch' }, logits: { 0: 'batch' } } });
  } finally {
    dummy.dispose();
    model.dispose();
  }
}

export class OrtPeer {
  private constructor(
    private readonly ort: Ort,
    private readonly session: InferenceSession | null,
    private readonly kilnSession: InferenceSession | null,
    private readonly assets: ResNetAssets,
    readonly version: string,
    /** Why torch's export could not be loaded, when it could not. */
    readonly torchExportError: string | null,
    /** Why Kiln's export could not be loaded, when it could not. */
    readonly kilnExportError: string | null,
  ) {}

  /**
   * Loads torch's export (when PyTorch wrote one) and Kiln's own export of
   * the same weights (always: it needs no PyTorch); rejects only when
   * neither loads.
   */
  static async create(assets: ResNetAssets): Promise<OrtPeer> {
    const ort = (await import('onnxruntime-node')) as Ort;
    const options: InferenceSession.SessionOptions = { executionProviders: ['cpu'], intraOpNumThreads: os.cpus().length, graphOptimizationLevel: 'all' };
    const load = async (model: () => Promise<string | Uint8Array>): Promise<[InferenceSession | null, string | null]> => {
      try {
        const m = await model();
        return [typeof m === 'string' ? await ort.InferenceSession.create(m, options) : await ort.InferenceSession.create(m, options), null];
      } catch (e) {
        return [null, (e as Error).message.split('\n')[0]!.slice(0, 200)];
      }
    };
    const [session, torchError] = assets.onnxPath
      ? await load(async () => assets.onnxPath!)
      : [null, `no torch export (PyTorch unavailable: ${assets.unavailable})`];
    const [kilnSession, kilnError] = await load(() => kilnExport(assets));
    if (!session && !kilnSession) throw new Error(`${torchError}; Kiln's export: ${kilnError}`);
    const versions = (ort.env as { versions?: Record<string, string> }).versions;
    return new OrtPeer(ort, session, kilnSession, assets, versions?.node ?? versions?.common ?? 'unknown', torchError, kilnError);
  }

  /** True when torch.onnx.export's model loaded. */
  get hasTorchExport(): boolean {
    return this.session !== null;
  }

  /** Logits of the first `batch` inputs, from torch.onnx.export's model. */
  async forward(batch: number): Promise<Float32Array> {
    if (!this.session) throw new Error(`torch's export did not load: ${this.torchExportError}`);
    return this.run(this.session, batch);
  }

  /** True when Kiln's own export loaded. */
  get hasKilnExport(): boolean {
    return this.kilnSession !== null;
  }

  /** Logits of the first `batch` inputs, from Kiln's own export. */
  async forwardKilnExport(batch: number): Promise<Float32Array> {
    if (!this.kilnSession) throw new Error(`Kiln's export did not load: ${this.kilnExportError}`);
    return this.run(this.kilnSession, batch);
  }

  private async run(session: InferenceSession, batch: number): Promise<Float32Array> {
    const x = inputBatch(this.assets, batch);
    const out = await session.run({ input: new this.ort.Tensor('float32', x.data, x.shape) });
    return out.logits!.data as Float32Array;
  }

  async dispose(): Promise<void> {
    await this.session?.release();
    await this.kilnSession?.release();
  }
}
