/**
 * @kiln/core — tensors, autograd, the backend interface and the CPU
 * reference backend. PyTorch's API in camelCase.
 *
 * @packageDocumentation
 */
export { Tensor, type NestedList } from './tensor.js';
export type { DType, TypedArray, TensorValues } from './dtype.js';
export { DTYPES, itemSize, promoteTypes, castScalar, allocArray, toTypedArray } from './dtype.js';
export { KilnError, ShapeError, DTypeError, BackendError, DisposedError, AutogradError } from './errors.js';
export {
  type Backend,
  type BackendStorage,
  type View,
  type UnaryOp,
  type BinaryOp,
  type ReduceOp,
  type UnaryParams,
  type MatmulEpilogue,
  type Conv2dParams,
  type Pool2dParams,
  type OptimizerStep,
  type SgdStep,
  type AdamStep,
  MAX_RANK,
  registerBackend,
  getBackend,
  hasBackend,
  listBackends,
  setDefaultBackend,
  getDefaultBackend,
} from './backend.js';
export { CpuBackend, cpuBackend, type CpuMemoryStats } from './cpu/backend.js';
export { numel, contiguousStrides, broadcastShapes, isContiguous } from './shape.js';
export { tidy, keep, memory, resetPeakMemoryStats, type MemoryInfo } from './memory.js';
export { Generator, manualSeed, defaultGenerator, getRngState, setRngState } from './random.js';
export { noGrad, enableGrad, isGradEnabled, setGradEnabled } from './autograd/grad-mode.js';
export { Node, type GradHook, type GradHookHandle, type BackwardFn } from './autograd/node.js';
export { withTracer, isTracing, untraced, tracedAs, type TracedOp, type Tracer } from './ops/trace.js';
export type { TensorOrScalar } from './ops/util.js';
export {
  tensor,
  fromArray,
  full,
  zeros,
  ones,
  zerosLike,
  onesLike,
  fullLike,
  arange,
  linspace,
  eye,
  rand,
  randn,
  randint,
  randLike,
  randnLike,
  randintLike,
  emptyTensor as empty,
  type TensorOptions,
  type RandomOptions,
  type NestedArray,
} from './ops/creation.js';
export * from './ops/functional.js';
export { where } from './ops/binary.js';
export { cast, clone } from './ops/unary.js';
export { view, reshape, permute, transpose, slice, narrow, select, expand, squeeze, unsqueeze, flatten, unflatten, contiguous } from './ops/views.js';
export { sum, mean, max, min, argmax, argmin, variance as var, std, logsumexp, softmax, logSoftmax, isfinite, type Dims, type ValuesIndices, type VarOptions } from './ops/reduce.js';
export { matmul } from './ops/matmul.js';
export { cat, stack, split, chunk, gather, scatterAdd, indexSelect, indexAdd, pad } from './ops/indexing.js';
export { conv2d, type Conv2dOptions, type ConvEpilogue, type Pair } from './ops/conv.js';
export { maxPool2d, maxPool2dWithIndices, avgPool2d, adaptiveAvgPool2d, type Pool2dOptions, type MaxPoolWithIndices } from './ops/pool.js';
export { batchNorm, type BatchNormOptions } from './ops/norm.js';
export { nllLoss, crossEntropy, mseLoss, type Reduction, type NllOptions, type CrossEntropyOptions } from './ops/loss.js';
export { linear, dropout } from './ops/linear.js';
export { sgdStep_, adamStep_, type SgdStepOptions, type AdamStepOptions, type AdamState } from './ops/optim.js';
export { FormatError } from './io/errors.js';
export {
  allocRaw,
  bitsToFloat32,
  halfToFloat,
  rawItemSize,
  rawFromBytes,
  rawToBytes,
  shapeSize,
  widenToKiln,
  type KilnDType,
  type KilnRawTensor,
  type RawArray,
  type RawDType,
  type RawTensor,
  type WidenOptions,
} from './io/raw-tensor.js';
export { encodeHalf, decodeHalf } from './float16.js';
export {
  readSafetensors,
  writeSafetensors,
  SAFETENSORS_MAX_HEADER,
  type ReadSafetensorsOptions,
  type SafetensorsFile,
} from './io/safetensors.js';
export { Function, FunctionCtx, type FunctionGrads } from './autograd/function.js';
export { checkpoint, type CheckpointOptions } from './autograd/checkpoint.js';
export { isRecomputing } from './autograd/recompute.js';
export {
  QTensor,
  QDTYPES,
  intDtypeOf,
  qRange,
  isQTensor,
  quantizePerTensor,
  quantizePerChannel,
  dequantize,
  quantizeInts,
  invScale,
  type QDType,
  type QScheme,
  type QParams,
  quantizedMatmul,
  type QuantizedMatmulOptions,
  quantizedConv2d,
  quantizedConvOverride,
  packConvWeight,
  channelsLast,
  fromChannelsLast,
  type QConvGeometry,
  type QConvWeight,
  quantizeBias,
  requantMultipliers,
  biasScales,
} from './quantized/index.js';
export type { QuantEpilogue } from './backend.js';
export { autocast, autocastScope, clearAutocastCache, isAutocastEnabled, type AutocastOptions, type AutocastHandle } from './autocast/autocast.js';
export { AUTOCAST_POLICY, type CastPolicy } from './autocast/policy.js';
