/**
 * torch.nn.functional in camelCase: the stateless forms of the layers.
 * The ops themselves are defined once, in @kiln/core; this namespace gathers them.
 */
import type { Tensor } from '@kiln/core';

export {
  conv2d,
  maxPool2d,
  maxPool2dWithIndices,
  avgPool2d,
  adaptiveAvgPool2d,
  batchNorm,
  linear,
  dropout,
  crossEntropy,
  nllLoss,
  mseLoss,
  softmax,
  logSoftmax,
  type Conv2dOptions,
  type Pool2dOptions,
  type BatchNormOptions,
  type CrossEntropyOptions,
  type NllOptions,
  type Reduction,
} from '@kiln/core';

/** max(x, 0); `inplace` overwrites x (F.relu(x, inplace)). */
export function relu(x: Tensor, inplace = false): Tensor {
  return inplace ? x.relu_() : x.relu();
}

/** Flattens dims startDim..endDim (torch.flatten). */
export function flatten(x: Tensor, startDim = 0, endDim = -1): Tensor {
  return x.flatten(startDim, endDim);
}
