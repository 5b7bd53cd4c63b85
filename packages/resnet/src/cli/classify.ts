import { readFile } from 'node:fs/promises';
import { IMAGENET_CATEGORIES } from '../labels/index.js';
import { modelFromWeights, useBackend } from './common.js';
import { runImages } from './images.js';
import { CliError, type CliIO } from './io.js';

/** Options of `kiln classify`. */
export interface ClassifyOptions {
  weights: string;
  backend: string;
  topk: number;
  batchSize: number;
  progress: boolean;
  labels?: string;
  json?: boolean;
}

/** Class names from a JSON array or a text file with one name per line. */
async function readLabels(path: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw new CliError(`cannot read labels file '${path}'`);
  }
  if (text.trimStart().startsWith('[')) {
    const list = JSON.parse(text) as unknown;
    if (!Array.isArray(list) || !list.every((s) => typeof s === 'string')) throw new CliError(`labels file '${path}' is not a JSON array of strings`);
    return list;
  }
  return text.split(/\r?\n/).filter((l) => l.trim() !== '');
}

/** Softmax of one row of logits, in float64. */
function softmax(row: Float32Array): Float64Array {
  let max = -Infinity;
  for (const v of row) max = Math.max(max, v);
  const out = Float64Array.from(row, (v) => Math.exp(v - max));
  const sum = out.reduce((a, b) => a + b, 0);
  return out.map((v) => v / sum);
}

/** `kiln classify --weights <file> <images...>`: the top-k classes of each image. */
export async function classify(io: CliIO, images: string[], opts: ClassifyOptions): Promise<void> {
  const device = await useBackend(opts.backend);
  const { model } = await modelFromWeights(opts.weights, device);
  const numClasses = (model.fc as unknown as { outFeatures: number }).outFeatures;
  const labels = opts.labels ? await readLabels(opts.labels) : numClasses === 1000 ? IMAGENET_CATEGORIES : [];
  if (opts.labels && labels.length !== numClasses) throw new CliError(`labels file '${opts.labels}' has ${labels.length} names for ${numClasses} classes`);
  const rows = await runImages(io, model, images, { batchSize: opts.batchSize, progress: opts.progress, device }, 'classify', (m, x) => m.call(x));
  const k = Math.min(opts.topk, numClasses);
  const results = rows.map((row, i) => {
    const p = softmax(row);
    const order = Array.from({ length: numClasses }, (_, c) => c).sort((a, b) => row[b]! - row[a]! || a - b).slice(0, k);
    return { image: images[i]!, top: order.map((c) => ({ class: c, label: labels[c] ?? `class ${c}`, probability: p[c]!, logit: row[c]! })) };
  });
  if (opts.json) {
    io.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
    return;
  }
  for (const r of results) {
    io.stdout.write(`${r.image}\n`);
    for (const t of r.top) io.stdout.write(`  ${(t.probability * 100).toFixed(2).padStart(6)}%  ${t.label} (${t.class})\n`);
  }
}
