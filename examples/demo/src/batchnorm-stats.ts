import { noGrad, tidy, type Tensor } from '@kiln/core';
import { BatchNorm2d, type Module } from '@kiln/nn';
import { disposing } from './train-loop.js';
import { evalBatches, type LabelledSet } from './data/images.js';

/** The BatchNorm layers of `module` whose affine parameters train (the ones a frozen backbone leaves trainable). */
export function trainableBatchNorms(module: Module): BatchNorm2d[] {
  return module.modules().filter((m): m is BatchNorm2d => m instanceof BatchNorm2d && [m.weight, m.bias].some((p) => p?.requiresGrad));
}

/**
 * Re-estimates the running statistics of `layers` from `values` (eval
 * transform of `set`), as `torch.optim.swa_utils.update_bn` does: reset,
 * momentum = None (a cumulative average over every batch), one forward pass
 * without autograd with only those layers in training mode. Running
 * statistics with momentum 0.1 lag the weights by ~10 steps; after a short
 * run that lag, not the weights, decides eval accuracy.
 */
export function updateBatchNorm(model: Module, layers: readonly BatchNorm2d[], set: LabelledSet, values: Float32Array, size: number | readonly number[], device: string, batchSize = 64): void {
  if (layers.length === 0) return;
  const wasTraining = model.training;
  model.eval();
  const momenta = layers.map((bn) => bn.momentum);
  for (const bn of layers) {
    bn.resetRunningStats();
    bn.momentum = null;
    bn.training = true;
  }
  try {
    noGrad(() => {
      for (const b of disposing(evalBatches(set, values, batchSize, size, device))) {
        if (b.items.length < 2) continue; // a batch of one has no variance
        tidy(() => model.call(b.images) as Tensor);
      }
    });
  } finally {
    layers.forEach((bn, i) => {
      bn.momentum = momenta[i]!;
      bn.training = false;
    });
    if (wasTraining) model.train();
  }
}
