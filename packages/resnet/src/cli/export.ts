import { writeFile } from 'node:fs/promises';
import { fromArray, noGrad, tidy, zeros } from '@kiln/core';
import { quantization, quantizeDynamic, type Module } from '@kiln/nn';
import { exportOnnx, SUPPORTED_OPSETS } from '@kiln/onnx';
import { batchImages } from '../preprocess/index.js';
import type { ResNet } from '../model/resnet.js';
import { QuantizableResNet } from '../quantization/quantizable.js';
import { chunks, modelFromWeights, useBackend } from './common.js';
import { loadImages } from './images.js';
import { CliError, type CliIO } from './io.js';

/** The quantization `kiln export --quantize` applies before exporting. */
export const QUANTIZE_MODES = ['dynamic', 'static'] as const;

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
  /** Dynamic (fc int8, activations quantized per call) or static (int8 throughout, calibrated) quantization. */
  quantize?: (typeof QUANTIZE_MODES)[number];
  /** Calibration images of static quantization. */
  calibrate?: string[];
}

/** Images per calibration forward pass. */
const CALIBRATION_BATCH = 8;

/**
 * The ImageNet eval preprocessing scaled to a `size` crop (Resize
 * size * 256 / 224, CenterCrop size), as the exported input expects.
 */
export function preprocessForSize(size: number): { resizeSize: number; cropSize: number } {
  return { resizeSize: Math.round((size * 256) / 224), cropSize: size };
}

/**
 * torchvision's static post-training quantization of a float ResNet:
 * QuantizableResNet around its layers, fuseModel, prepare (MinMax
 * observers), the calibration images through it in batches, convert. The
 * float model's layers are taken over (its remaining float convs are the caller's to dispose).
 */
export async function quantizeStatic(model: ResNet, images: readonly { data: Float32Array; shape: number[] }[], device: string): Promise<QuantizableResNet> {
  const q = new QuantizableResNet(model).eval().fuseModel();
  quantization.prepare(q, { inplace: true });
  for (const batch of chunks(images, CALIBRATION_BATCH)) {
    const b = batchImages(batch);
    noGrad(() => tidy(() => q.call(fromArray(b.data, b.shape, { device }))));
    await new Promise((r) => setImmediate(r));
  }
  return quantization.convert(q, { inplace: true });
}

function checkQuantizeOptions(opts: ExportOptions): void {
  const calib = opts.calibrate ?? [];
  if (opts.quantize !== undefined && !(QUANTIZE_MODES as readonly string[]).includes(opts.quantize)) {
    throw new CliError(`--quantize must be one of ${QUANTIZE_MODES.join(', ')}, got '${opts.quantize}'`);
  }
  if (opts.quantize === 'static' && !calib.length) throw new CliError('--quantize static needs calibration images: --calibrate <images...>');
  if (opts.quantize !== 'static' && calib.length) throw new CliError('--calibrate is only used with --quantize static');
  if (opts.quantize === 'static' && !opts.foldBatchNorm) throw new CliError('--no-fold-batch-norm does not apply to --quantize static (static quantization folds BatchNorm into the int8 convs)');
}

/**
 * `kiln export --weights <file> --out model.onnx [--opset 17] [--dynamic-batch]
 * [--quantize dynamic|static --calibrate <images...>]`: the model as ONNX, as
 * `torch.onnx.export(model, dummy_input, "resnet18.onnx")` (input `input`
 * [1 or batch, 3, size, size], output `logits`). `--quantize dynamic` exports
 * the model with its fc dynamically quantized (MatMulInteger);
 * `--quantize static` quantizes it to int8 throughout, calibrated on the
 * images (read through the eval preprocessing at `--size`), in QDQ form.
 */
export async function exportModel(io: CliIO, opts: ExportOptions): Promise<void> {
  if (!/\.onnx$/i.test(opts.out)) throw new CliError(`--out must end in .onnx, got '${opts.out}'`);
  if (!SUPPORTED_OPSETS.includes(opts.opset)) throw new CliError(`--opset must be one of ${SUPPORTED_OPSETS.join(', ')}, got ${opts.opset}`);
  checkQuantizeOptions(opts);
  // Bad image files fail before the weights are read or any compute runs.
  const images = opts.quantize === 'static' ? await loadImages(opts.calibrate!, preprocessForSize(opts.size)) : [];
  const device = await useBackend(opts.backend);
  const { model, arch } = await modelFromWeights(opts.weights, device);
  const dummy = zeros([1, 3, opts.size, opts.size], { device });
  let exported: Module = model;
  let what = arch;
  try {
    if (opts.quantize === 'dynamic') {
      exported = await quantizeDynamic(model);
      what = `${arch} (fc dynamically quantized to int8)`;
    } else if (opts.quantize === 'static') {
      exported = await quantizeStatic(model, images, device);
      what = `${arch} (int8, static, calibrated on ${images.length} image${images.length === 1 ? '' : 's'})`;
    }
    const bytes = await exportOnnx(exported, dummy, {
      opset: opts.opset,
      inputNames: ['input'],
      outputNames: ['logits'],
      dynamicAxes: opts.dynamicBatch ? { input: { 0: 'batch' }, logits: { 0: 'batch' } } : undefined,
      foldBatchNorm: opts.foldBatchNorm,
      docString: `${what} exported by kiln from ${opts.weights}`,
    });
    await writeFile(opts.out, bytes);
    const batch = opts.dynamicBatch ? 'batch' : '1';
    io.stderr.write(`wrote ${opts.out}: ${what}, opset ${opts.opset}, input [${batch}, 3, ${opts.size}, ${opts.size}] -> logits, ${(bytes.length / 1e6).toFixed(1)} MB\n`);
  } finally {
    dummy.dispose();
    if (exported !== model) exported.dispose();
    model.dispose();
  }
}
