/**
 * Model export for download. safetensors holds the state dict with
 * torchvision's keys (PyTorch reads it with `safetensors.torch.load_file`,
 * Kiln with loadWeights); the class names ride in its metadata so the page
 * reopens a fine-tuned model with its labels.
 */
import { saveSafetensors } from '@kiln/nn';
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
