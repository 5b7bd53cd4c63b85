// Node-only helpers of @kiln/onnx ('@kiln/onnx/node'): write an export to a file.
import { writeFile } from 'node:fs/promises';
import type { Tensor } from '@kiln/core';
import type { Module } from '@kiln/nn';
import { exportOnnx, type ExportOnnxOptions } from './export.js';

/**
 * Exports `model` (see {@link exportOnnx}) and writes the .onnx file to `path`,
 * as `torch.onnx.export(model, dummy_input, "resnet18.onnx")`. Returns the bytes written.
 */
export async function saveOnnx(model: Module, exampleInputs: Tensor | readonly Tensor[], path: string, opts: ExportOnnxOptions = {}): Promise<Uint8Array> {
  const bytes = await exportOnnx(model, exampleInputs, opts);
  await writeFile(path, bytes);
  return bytes;
}

export { exportOnnx, type ExportOnnxOptions };
