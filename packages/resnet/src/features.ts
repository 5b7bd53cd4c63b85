import { noGrad, type Tensor } from '@kiln/core';
import { Module } from '@kiln/nn';
import type { ResNet, ResNetFeatures } from './model/resnet.js';

/**
 * A ResNet without its classifier: forward returns the 512-d pooled
 * features [B, 512] (what torchvision users get with `model.fc = nn.Identity()`),
 * and {@link forwardFeatures} also gives `layer4`'s output. The backbone is
 * shared, not copied: training it trains the model. Its state-dict keys
 * are the backbone's under `backbone.`.
 */
export class FeatureExtractor extends Module {
  /** The ResNet whose pooled features are returned (its fc is not run). */
  declare backbone: ResNet;

  /** Wraps `backbone` without copying it. */
  constructor(backbone: ResNet) {
    super();
    this.backbone = backbone;
  }

  /** Pooled features [B, 512]. */
  override forward(x: Tensor): Tensor {
    const { layer4, pooled } = this.backbone.forwardFeatures(x);
    layer4.dispose();
    return pooled;
  }

  /** `layer4`'s output and the pooled features. */
  forwardFeatures(x: Tensor): ResNetFeatures {
    return this.backbone.forwardFeatures(x);
  }
}

/**
 * Pooled 512-d features of `images` [B, 3, H, W], in eval mode and without
 * autograd (the fused path); the model's training mode is restored after.
 */
export function extractFeatures(model: ResNet, images: Tensor): Tensor {
  const wasTraining = model.training;
  model.eval();
  try {
    return noGrad(() => {
      const { layer4, pooled } = model.forwardFeatures(images);
      layer4.dispose();
      return pooled;
    });
  } finally {
    if (wasTraining) model.train();
  }
}
