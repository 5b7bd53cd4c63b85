import { KilnError } from '@kiln/core';
import { skipInit } from '@kiln/nn';
import type { RawTensor } from '../io/index.js';
import { ResNet } from './resnet.js';

const ARCHS: Record<string, readonly [number, number, number, number]> = {
  resnet18: [2, 2, 2, 2],
  resnet34: [3, 4, 6, 3],
};

/** Blocks per stage as a state dict shows them (`layer3.5.conv1.weight` means ≥ 6 blocks in layer3). */
function blocksPerStage(keys: Iterable<string>): [number, number, number, number] {
  const counts: [number, number, number, number] = [0, 0, 0, 0];
  for (const k of keys) {
    const m = /^layer([1-4])\.(\d+)\./.exec(k);
    if (m) counts[Number(m[1]) - 1] = Math.max(counts[Number(m[1]) - 1]!, Number(m[2]) + 1);
  }
  return counts;
}

/** What {@link resnetForWeights} returns. */
export interface ResNetForWeights {
  /** The model, its weights not yet loaded. */
  model: ResNet;
  /** Its architecture's name: 'resnet18' or 'resnet34'. */
  arch: string;
}

/**
 * The BasicBlock ResNet a state dict was saved from (resnet18 or resnet34,
 * any number of classes, read from `fc.weight`) on `device`, built without
 * drawing initial weights (the caller loads these weights into it).
 * @throws KilnError when the keys are not a BasicBlock ResNet's.
 */
export function resnetForWeights(weights: Map<string, RawTensor>, opts: { device?: string } = {}): ResNetForWeights {
  const layers = blocksPerStage(weights.keys());
  const arch = Object.entries(ARCHS).find(([, l]) => l.every((n, i) => n === layers[i]))?.[0];
  const fc = weights.get('fc.weight');
  if (!arch || !weights.has('conv1.weight') || !fc || fc.shape.length !== 2) {
    throw new KilnError('resnetForWeights', `the weights are not a torchvision resnet18/resnet34 state dict (blocks per stage [${layers.join(', ')}], ${fc ? `fc.weight [${fc.shape.join(', ')}]` : 'no fc.weight'})`);
  }
  const model = skipInit(() => new ResNet(ARCHS[arch]!, { numClasses: fc.shape[0], device: opts.device }));
  return { model, arch };
}
