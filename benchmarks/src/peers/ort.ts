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
    private readonly session: InferenceSession,
    private readonly kilnSession: InferenceSession | null,
    private readonly assets: ResNetAssets,
    readonly version: string,
    /** Why Kiln's export could not be loaded, when it could not. */
    readonly kilnExportError: string | null,
  ) {}

  static async create(assets: ResNetAssets): Promise<OrtPeer> {
    if (!assets.onnxPath) throw new Error('no ONNX model (PyTorch was unavailable to export it)');
    const ort = (await import('onnxruntime-node')) as Ort;
    const options: InferenceSession.SessionOptions = { executionProviders: ['cpu'], intraOpNumThreads: os.cpus().length, graphOptimizationLevel: 'all' };
    const session = await ort.InferenceSession.create(assets.onnxPath, options);
    let kilnSession: InferenceSession | null = null;
    let kilnError: string | null = null;
    try {
      kilnSession = await ort.InferenceSession.create(await kilnExport(assets), options);
    } catch (e) {
      kilnError = (e as Error).message.slice(0, 200);
    }
    const versions = (ort.env as { versions?: Record<string, string> }).versions;
    return new OrtPeer(ort, session, kilnSession, assets, versions?.node ?? versions?.common ?? 'unknown', kilnError);
  }

  /** Logits of the first `batch` inputs, from torch.onnx.export's model. */
  async forward(batch: number): Promise<Float32Array> {
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
    await this.session.release();
    await this.kilnSession?.release();
  }
}
