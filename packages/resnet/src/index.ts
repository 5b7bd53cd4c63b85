/**
 * @kiln/resnet — ResNet18/34 as torchvision builds them, PyTorch weight
 * files (.pth, safetensors), ImageNet preprocessing, feature extraction,
 * transfer learning helpers, evaluation, and the `kiln` command line.
 *
 * @packageDocumentation
 */
export * from './io/index.js';
export * from './preprocess/index.js';
export { ResNet, resnet18, resnet34, type ResNetOptions, type ResNetFeatures, type CheckpointMode } from './model/resnet.js';
export { BasicBlock, conv1x1, conv3x3 } from './model/basic-block.js';
export { foldConvBn, releaseFolded, canFold, type FoldedConv } from './model/fold.js';
export { pruneInnerChannels, shrinkInnerChannels, innerWidths, withInnerWidths, type ShrinkResult } from './model/shrink.js';
export { loadWeights, readWeights, loadRawWeights, detectWeightsFormat, type LoadWeightsOptions, type ReadWeightsOptions, type WeightsFormat } from './model/load-weights.js';
export { resnetForWeights, type ResNetForWeights } from './model/from-weights.js';
export { freezeBatchNorm, type FreezeBatchNormOptions, type FrozenBatchNorm } from './transfer/index.js';
export { FeatureExtractor, extractFeatures } from './features.js';
export { evaluateAccuracy, topkCorrect, type AccuracyResult, type EvalBatch, type EvaluateOptions } from './eval.js';
export { IMAGENET_CATEGORIES } from './labels/index.js';
export { QuantizableResNet, QuantizableBasicBlock, quantizableResnet18 } from './quantization/quantizable.js';
