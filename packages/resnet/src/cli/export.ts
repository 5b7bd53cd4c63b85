import { writeFile } from 'node:fs/promises';
import { zeros } from '@kiln/core';
import { exportOnnx, SUPPORTED_OPSETS } from '@kiln/onnx';
import { modelFromWeights, useBackend } from './common.js';
import { CliError, type CliIO } from './io.js';

/** Options of `kiln export`. */
export interface ExportOptions {
  weights: string;
  out: string;
  opset: number;
  dynamicBatch: boolean;
  /** Input height and width (default 224). */
  size: number;
  foldBatchNorm: boolean;
  backend: string;
}

/**
 * `kiln export --weights <file> --out model.onnx [--opset 17] [--dynamic-batch]`:
 * the model as ONNX, as `torch.onnx.export(model, dummy_input, "resnet18.onnx")`
 * (input `input` [1 or batch, 3, size, size], output `logits`).
 */
export async function exportModel(io: CliIO, opts: ExportOptions): Promise<void> {
  if (!/\.onnx$/i.test(opts.out)) throw new CliError(`--out must end in .onnx, got '${opts.out}'`);
  if (!SUPPORTED_OPSETS.includes(opts.opset)) throw new CliError(`--opset must be one of ${SUPPORTED_OPSETS.join(', ')}, got ${opts.opset}`);
  const device = await useBackend(opts.backend);
  const { model, arch } = await modelFromWeights(opts.weights, device);
  const dummy = zeros([1, 3, opts.size, opts.size], { device });
  try {
    const bytes = await exportOnnx(model, dummy, {
      opset: opts.opset,
      inputNames: ['input'],
      outputNames: ['logits'],
      dynamicAxes: opts.dynamicBatch ? { input: { 0: 'batch' }, logits: { 0: 'batch' } } : undefined,
      foldBatchNorm: opts.foldBatchNorm,
      docString: `${arch} exported by kiln from ${opts.weights}`,
    });
    await writeFile(opts.out, bytes);
    const batch = opts.dynamicBatch ? 'batch' : '1';
    io.stderr.write(`wrote ${opts.out}: ${arch}, opset ${opts.opset}, input [${batch}, 3, ${opts.size}, ${opts.size}] -> logits, ${(bytes.length / 1e6).toFixed(1)} MB\n`);
  } finally {
    dummy.dispose();
    model.dispose();
  }
}
