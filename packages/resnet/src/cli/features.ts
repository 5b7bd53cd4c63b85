import { writeFile } from 'node:fs/promises';
import { modelFromWeights, useBackend } from './common.js';
import { runImages } from './images.js';
import { CliError, type CliIO } from './io.js';

/** Options of `kiln features`. */
export interface FeaturesOptions {
  weights: string;
  backend: string;
  out?: string;
  batchSize: number;
  progress: boolean;
}

/** A float32 [rows, cols] array as a NumPy .npy file (format 1.0). */
export function npyBytes(rows: readonly Float32Array[], cols: number): Uint8Array {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${rows.length}, ${cols}), }`;
  // Magic (6) + version (2) + length (2) + header + '\n' is a multiple of 64.
  header += ' '.repeat((64 - ((10 + header.length + 1) % 64)) % 64) + '\n';
  const out = new Uint8Array(10 + header.length + rows.length * cols * 4);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  const data = new Float32Array(out.buffer, 10 + header.length);
  rows.forEach((r, i) => data.set(r, i * cols));
  return out;
}

/** `kiln features --weights <file> <images...> [--out f.json|f.npy]`: the 512-d pooled features of each image. */
export async function features(io: CliIO, images: string[], opts: FeaturesOptions): Promise<void> {
  const out = opts.out;
  if (out && !/\.(json|npy)$/i.test(out)) throw new CliError(`--out must end in .json or .npy, got '${out}'`);
  const device = await useBackend(opts.backend);
  const { model } = await modelFromWeights(opts.weights, device);
  const rows = await runImages(io, model, images, { batchSize: opts.batchSize, progress: opts.progress, device }, 'features', (m, x) => {
    const { layer4, pooled } = m.forwardFeatures(x);
    layer4.dispose();
    return pooled;
  });
  const cols = rows[0]?.length ?? 512;
  if (out?.toLowerCase().endsWith('.npy')) {
    await writeFile(out, npyBytes(rows, cols));
    io.stderr.write(`wrote ${out}: float32 [${rows.length}, ${cols}]\n`);
    return;
  }
  const json = JSON.stringify({ images, shape: [rows.length, cols], features: rows.map((r) => [...r]) });
  if (out) {
    await writeFile(out, `${json}\n`);
    io.stderr.write(`wrote ${out}: [${rows.length}, ${cols}]\n`);
  } else io.stdout.write(`${json}\n`);
}
