/**
 * @kiln/nn — PyTorch's torch.nn and torch.optim in camelCase: Module and
 * Parameter, layers, functional, init, losses, optimizers with parameter
 * groups, learning-rate schedulers, gradient clipping and safetensors state
 * dicts.
 *
 * @packageDocumentation
 */
export { Module, type ForwardHook, type ForwardPreHook, type RemovableHandle } from './module.js';
export { parameter, isParameter, type Parameter } from './parameter.js';
export { derivingPreHook, derivationOf, hooksAllowFastPath, releaseDerived, type TensorDerivation, type DerivingPreHook } from './effective-tensor.js';
export { StateDictError, type StateDict, type StateDictOptions, type LoadResult } from './state-dict.js';
export { Conv2d, type Conv2dOptions } from './layers/conv.js';
export { Linear } from './layers/linear.js';
export { BatchNorm2d, type BatchNormOptions } from './layers/batchnorm.js';
export { ReLU } from './layers/activation.js';
export { MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, type MaxPool2dOptions, type AvgPool2dOptions, type AdaptiveSize } from './layers/pooling.js';
export { Flatten, Identity, Dropout } from './layers/shape.js';
export { Sequential, ModuleList, ModuleDict } from './layers/container.js';
export { CrossEntropyLoss, NLLLoss, MSELoss, type WeightedLossOptions } from './layers/loss.js';
/** torch.nn.functional in camelCase. */
export * as functional from './functional.js';
/** torch.nn.init in camelCase (in-place initialisers end in `_`). */
export * as init from './init.js';
export { skipInit } from './init.js';
/** torch.optim: optimizers with parameter groups. */
export * as optim from './optim/index.js';
/** torch.optim.lr_scheduler. */
export * as lrScheduler from './lr-scheduler/index.js';
/** torch.nn.utils.prune: unstructured, structured and global pruning with PyTorch's masks and state-dict keys. */
export * as prune from './prune/index.js';
export { clipGradNorm_ } from './clip-grad.js';
/** torch.ao.quantization: observers, dynamic quantization, the static post-training flow, size reports. */
export * as quantization from './quantization/index.js';
export { quantizeDynamic, type QuantizeDynamicOptions } from './quantization/index.js';
export { checkpointSequential } from './checkpoint-sequential.js';
export { GradScaler, type GradScalerOptions, type GradScalerStateDict } from './amp/grad-scaler.js';
export { saveSafetensors, loadSafetensors, SafetensorsError, type SaveSafetensorsOptions } from './serialization.js';
