import { fromArray, noGrad, type Tensor } from '@kiln/core';
import { batchImages, preprocessImage, type PreprocessOptions } from '../preprocess/index.js';
import type { ResNet } from '../model/resnet.js';
import { CliError, type CliIO } from './io.js';
import { chunks, progressBar, readInput } from './common.js';

/** Options shared by the commands that run images through the model. */
export interface ImageRunOptions {
  batchSize: number;
  progress: boolean;
  device: string;
}

/** Reads and preprocesses every image first (ImageNet eval pipeline, `opts` as preprocessImage's), so a bad file fails before any compute. */
export async function loadImages(paths: readonly string[], opts: PreprocessOptions = {}): Promise<{ data: Float32Array; shape: number[] }[]> {
  const out = [];
  for (const p of paths) {
    const bytes = await readInput(p, 'image');
    try {
      out.push(preprocessImage(bytes, opts));
    } catch (e) {
      throw new CliError(`cannot decode image '${p}': ${(e as Error).message}`);
    }
  }
  return out;
}

/**
 * Runs `paths` through `fn` in batches (ImageNet eval preprocessing), with a
 * progress bar; `fn` returns one [B, K] tensor per batch. Returns the rows.
 */
export async function runImages(io: CliIO, model: ResNet, paths: readonly string[], opts: ImageRunOptions, label: string, fn: (m: ResNet, x: Tensor) => Tensor): Promise<Float32Array[]> {
  const images = await loadImages(paths);
  const rows: Float32Array[] = [];
  const bar = progressBar(io, opts.progress, images.length, label);
  try {
    for (const batch of chunks(images, opts.batchSize)) {
      const b = batchImages(batch);
      const x = fromArray(b.data, b.shape, { device: opts.device });
      const y = noGrad(() => fn(model, x));
      x.dispose();
      const values = (await y.toArray()) as Float32Array;
      const width = y.shape[1]!;
      y.dispose();
      for (let i = 0; i < batch.length; i++) rows.push(values.slice(i * width, (i + 1) * width));
      bar.update(rows.length);
      await new Promise((r) => setImmediate(r));
    }
  } finally {
    bar.stop();
  }
  return rows;
}
