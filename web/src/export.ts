/**
 * Model export for download. safetensors holds the state dict with
 * torchvision's keys (PyTorch reads it with `safetensors.torch.load_file`,
 * Kiln with loadWeights); the class names ride in its metadata so the page
 * reopens a fine-tuned model with its labels. ONNX comes from @kiln/onnx's
 * exportOnnx (BatchNorm folded, dynamic batch), for ONNX Runtime and others.
 */
import { zeros } from '@kiln/core';
import { saveSafetensors } from '@kiln/nn';
import { exportOnnx } from '@kiln/onnx';
import type { ResNet } from '@kiln/resnet';

/** A file to offer for download. */
export interface ExportedFile {
  name: string;
  bytes: Uint8Array;
  mime: string;
}

/** The model's state dict as safetensors, with `labels` (JSON) and `arch` metadata. */
export async function exportSafetensors(model: ResNet, labels: readonly string[], arch: string): Promise<ExportedFile> {
  const sd = model.stateDict();
  try {
    const bytes = await saveSafetensors(sd, { metadata: { format: 'pt', arch, labels: JSON.stringify(labels) } });
    return { name: `${arch}-kiln.safetensors`, bytes, mime: 'application/octet-stream' };
  } finally {
    for (const t of Object.values(sd)) t.dispose();
  }
}

/**
 * The model as ONNX (opset 17, `input` [batch, 3, 224, 224] -> `logits`
 * [batch, numClasses]), traced once on a zero image on `device`; the class
 * names are stored in the graph's doc string.
 */
export async function exportOnnxFile(model: ResNet, labels: readonly string[], arch: string, device: string): Promise<ExportedFile> {
  const example = zeros([1, 3, 224, 224], { device });
  try {
    const bytes = await exportOnnx(model, example, {
      opset: 17,
      inputNames: ['input'],
      outputNames: ['logits'],
      dynamicAxes: { input: { 0: 'batch' }, logits: { 0: 'batch' } },
      docString: `Kiln ${arch}; labels ${JSON.stringify(labels)}`,
    });
    return { name: `${arch}-kiln.onnx`, bytes, mime: 'application/octet-stream' };
  } finally {
    example.dispose();
  }
}
