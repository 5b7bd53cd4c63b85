/**
 * Peer: ONNX Runtime for Node on the CPU, running torch.onnx.export of the
 * same seeded ResNet18 (ORT folds BatchNorm itself at graph optimisation).
 */
import os from 'node:os';
import type { InferenceSession } from 'onnxruntime-node';
import { inputBatch, type ResNetAssets } from '../weights.js';

type Ort = typeof import('onnxruntime-node');

export class OrtPeer {
  private constructor(private readonly ort: Ort, private readonly session: InferenceSession, private readonly assets: ResNetAssets, readonly version: string) {}

  static async create(assets: ResNetAssets): Promise<OrtPeer> {
    if (!assets.onnxPath) throw new Error('no ONNX model (PyTorch was unavailable to export it)');
    const ort = (await import('onnxruntime-node')) as Ort;
    const session = await ort.InferenceSession.create(assets.onnxPath, {
      executionProviders: ['cpu'],
      intraOpNumThreads: os.cpus().length,
      graphOptimizationLevel: 'all',
    });
    const versions = (ort.env as { versions?: Record<string, string> }).versions;
    return new OrtPeer(ort, session, assets, versions?.node ?? versions?.common ?? 'unknown');
  }

  /** Logits of the first `batch` inputs. */
  async forward(batch: number): Promise<Float32Array> {
    const x = inputBatch(this.assets, batch);
    const out = await this.session.run({ input: new this.ort.Tensor('float32', x.data, x.shape) });
    return out.logits!.data as Float32Array;
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}
