import { readWeights, detectWeightsFormat } from '../model/load-weights.js';
import { readInput } from './common.js';
import type { CliIO } from './io.js';

const BUFFER_SUFFIXES = ['running_mean', 'running_var', 'num_batches_tracked'];

/** True for BatchNorm buffers, which a state dict holds beside the parameters. */
export function isBufferKey(key: string): boolean {
  return BUFFER_SUFFIXES.some((s) => key.endsWith(`.${s}`) || key === s);
}

const fmt = (n: number) => n.toLocaleString('en-US');

/** `kiln info <weights>`: every tensor with its shape and dtype (as stored), and the parameter count. */
export async function info(io: CliIO, path: string): Promise<void> {
  const bytes = await readInput(path, 'weights file');
  const format = detectWeightsFormat(bytes);
  const tensors = readWeights(bytes, { source: `'${path}'`, keepDtype: true });
  const rows = [...tensors].map(([k, t]) => [k, `[${t.shape.join(', ')}]`, t.dtype] as const);
  const w0 = Math.max(...rows.map((r) => r[0].length), 6);
  const w1 = Math.max(...rows.map((r) => r[1].length), 5);
  io.stdout.write(`${path}: ${format === 'pth' ? 'PyTorch .pth (zip)' : 'safetensors'}, ${tensors.size} tensors\n`);
  io.stdout.write(`${'tensor'.padEnd(w0)}  ${'shape'.padEnd(w1)}  dtype\n`);
  for (const [k, s, d] of rows) io.stdout.write(`${k.padEnd(w0)}  ${s.padEnd(w1)}  ${d}\n`);
  let params = 0;
  let buffers = 0;
  let bufferTensors = 0;
  for (const [k, t] of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (isBufferKey(k)) {
      buffers += n;
      bufferTensors++;
    } else params += n;
  }
  io.stdout.write(`parameters: ${fmt(params)} in ${fmt(tensors.size - bufferTensors)} tensors\n`);
  io.stdout.write(`buffers: ${fmt(buffers)} values in ${fmt(bufferTensors)} tensors (BatchNorm running stats)\n`);
}
