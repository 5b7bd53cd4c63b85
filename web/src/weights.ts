/**
 * Turns the bytes of a dropped weight file into a ready model: torchvision
 * `.pth` (torch.save of a state dict, or a training checkpoint with a
 * `state_dict` / `model` entry, as the demo writes) or `.safetensors`. The
 * architecture and the number of classes come from the tensors themselves.
 */
import { KilnError, readSafetensors } from '@kiln/core';
import { IMAGENET_CATEGORIES, detectWeightsFormat, loadRawWeights, readWeights, resnetForWeights, type ResNet } from '@kiln/resnet';

/** A model built from a weight file, with the names of its classes. */
export interface LoadedModel {
  model: ResNet;
  /** 'resnet18' or 'resnet34'. */
  arch: string;
  /** One name per output of `fc`. */
  labels: string[];
  /** The file name it came from. */
  source: string;
  /** Parameter count. */
  parameters: number;
}

/**
 * Class names for a head of `numClasses` outputs: ImageNet's for 1000, a
 * safetensors file's `labels` metadata (a JSON array) when it has one of the
 * right length, else `class 0`, `class 1`, ...
 */
export function labelsFor(numClasses: number, metadata?: Record<string, string>): string[] {
  const listed = metadata?.labels ?? metadata?.classes;
  if (listed) {
    try {
      const names = JSON.parse(listed) as unknown;
      if (Array.isArray(names) && names.length === numClasses && names.every((n) => typeof n === 'string')) return names;
    } catch {
      // not JSON: fall through to the defaults
    }
  }
  if (numClasses === IMAGENET_CATEGORIES.length) return [...IMAGENET_CATEGORIES];
  return Array.from({ length: numClasses }, (_, i) => `class ${i}`);
}

/**
 * Reads `bytes` (named `name` in messages) as ResNet weights and loads them
 * into a new model on `device`, in eval mode.
 * @throws FormatError when the file is not a weight file; KilnError when the tensors are not a torchvision ResNet's.
 */
export function modelFromBytes(bytes: Uint8Array, name: string, device: string): LoadedModel {
  const raw = readWeights(bytes, { source: `'${name}'` });
  const { model, arch } = resnetForWeights(raw, { device });
  try {
    loadRawWeights(model, raw);
  } catch (e) {
    model.dispose();
    throw new KilnError('loadWeights', `'${name}' has ResNet keys but does not load: ${(e as Error).message}`);
  }
  const numClasses = raw.get('fc.weight')!.shape[0]!;
  const metadata = detectWeightsFormat(bytes) === 'safetensors' ? readSafetensors(bytes).metadata : undefined;
  const parameters = model.parameters().reduce((n, p) => n + p.numel(), 0);
  return { model: model.eval(), arch, labels: labelsFor(numClasses, metadata), source: name, parameters };
}

/**
 * Class names from a labels file: a JSON array of strings, or text with one
 * name per line (blank lines ignored), as `kiln classify --labels` reads.
 * @throws Error when the file is neither.
 */
export function parseLabels(text: string, name: string): string[] {
  if (text.trimStart().startsWith('[')) {
    let list: unknown;
    try {
      list = JSON.parse(text);
    } catch (e) {
      throw new Error(`${name} is not valid JSON (${(e as Error).message})`);
    }
    if (!Array.isArray(list) || !list.every((s) => typeof s === 'string')) throw new Error(`${name} is not a JSON array of strings`);
    return list;
  }
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');
  if (lines.length === 0) throw new Error(`${name} has no labels`);
  return lines;
}
