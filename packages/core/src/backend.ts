import type { DType, TypedArray } from './dtype.js';
import { BackendError } from './errors.js';
import { installFloat16Fallback } from './float16-fallback.js';

/**
 * A backend-owned block of memory holding `size` elements of `dtype`.
 * Opaque to core: each backend extends it with its own handle (a host
 * array, a GPUBuffer, ...).
 */
export interface BackendStorage {
  /** Number of elements. */
  readonly size: number;
  /** Element type of the stored values. */
  readonly dtype: DType;
}

/**
 * How a primitive sees one tensor operand: storage plus a strided layout.
 * `strides` and `offset` are in elements. A stride of 0 repeats an element
 * (broadcasting). Ranks are at most {@link MAX_RANK}.
 */
export interface View<S extends BackendStorage = BackendStorage> {
  /** The memory the operand lives in. */
  readonly storage: S;
  /** Element type of the operand. */
  readonly dtype: DType;
  /** Sizes of each dim. */
  readonly shape: readonly number[];
  /** Elements to step per index of each dim (0 repeats). */
  readonly strides: readonly number[];
  /** Element offset of [0, ..., 0] in storage. */
  readonly offset: number;
}

/** The largest rank a primitive must handle; core rejects larger tensors. */
export const MAX_RANK = 8;

/** The elementwise unary primitives (clamp takes UnaryParams). */
export type UnaryOp =
  | 'neg' | 'abs' | 'exp' | 'log' | 'sqrt' | 'rsqrt' | 'sin' | 'cos' | 'tanh'
  | 'sigmoid' | 'relu' | 'sign' | 'floor' | 'ceil' | 'round' | 'clamp'
  | 'square' | 'reciprocal' | 'logicalNot';

/** The elementwise binary primitives (comparisons and logical ops write bool). */
export type BinaryOp =
  | 'add' | 'sub' | 'mul' | 'div' | 'pow' | 'maximum' | 'minimum'
  | 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge' | 'logicalAnd' | 'logicalOr';

/** The reductions a backend implements over trailing dims. */
export type ReduceOp = 'sum' | 'mean' | 'max' | 'min' | 'argmax' | 'argmin' | 'prod';

/** Parameters of a unary op that takes some (clamp: min/max, either may be absent). */
export interface UnaryParams {
  /** Lower bound of clamp. */
  min?: number;
  /** Upper bound of clamp. */
  max?: number;
}

/**
 * What a GEMM does after the multiply-accumulate, per output element
 * out[b, m, n] = act(alpha * acc + bias + residual).
 */
export interface MatmulEpilogue<S extends BackendStorage = BackendStorage> {
  /** Added per column n (shape [N]) or per row m (shape [M]) — see `biasAxis`. */
  bias?: View<S>;
  /** Which output axis `bias` runs along: 'n' (columns, linear's) or 'm' (rows). Default 'n'. */
  biasAxis?: 'n' | 'm';
  /** Added elementwise, same shape as out [B, M, N] (strides may be 0). */
  residual?: View<S>;
  /** Applies max(0, .) last. */
  relu?: boolean;
  /** Scales the accumulated product before bias and residual. Default 1. */
  alpha?: number;
  /** Integer GEMM: a and b are int8/uint8, accumulation is int32 (see {@link QuantEpilogue}). */
  quant?: QuantEpilogue<S>;
}

/**
 * The integer GEMM epilogue. With a [B, M, K] and b [B, K, N] int8/uint8
 * (K a multiple of 4, a unit-stride along k in both, offsets and the other
 * strides multiples of 4), v[m, n] = Σ_k (a[m, k] - aZeroPoint) * b[k, n]
 * in int32 (b's zero point is 0), computed as Σ a·b - aZeroPoint * bColSum[n].
 * A float32 out gets f32(v) * scale[n] (+ bias[n], float32) (then ReLU);
 * an int8/uint8 out gets the requantized clamp(round(f32(v + bias[n]) *
 * scale[n]) + outZeroPoint) with an int32 bias (fbgemm's rule), or
 * clamp(round(f32(v) * scale[n] + bias[n]) + outZeroPoint) with a float32
 * bias in output units (onednn's), ReLU clamping at outZeroPoint.
 */
export interface QuantEpilogue<S extends BackendStorage = BackendStorage> {
  /** int32 [1]: a's zero point. */
  aZeroPoint: View<S>;
  /** int32 [N]: Σ_k b[k, n]. */
  bColSum: View<S>;
  /** float32 [N]: the per-column multiplier. */
  scale: View<S>;
  /** Shape [N]. float32 for a float out; int32 or float32 for a quantized out. */
  bias?: View<S>;
  /** The zero point of an int8/uint8 out. */
  outZeroPoint?: number;
}

/** NCHW 2-D convolution geometry, padding already resolved to numbers. */
export interface Conv2dParams {
  /** Step of the kernel window, [h, w]. */
  stride: [number, number];
  /** Zero padding on each side, [h, w]. */
  padding: [number, number];
  /** Spacing between kernel taps, [h, w]. */
  dilation: [number, number];
  /** Channel groups (input and output channels split into this many). */
  groups: number;
}

/** NCHW 2-D pooling geometry. */
export interface Pool2dParams {
  /** Window size, [h, w]. */
  kernel: [number, number];
  /** Window step, [h, w]. */
  stride: [number, number];
  /** Implicit padding on each side, [h, w] (-Inf for max pooling, 0 for average). */
  padding: [number, number];
  /** Spacing between window taps, [h, w]. */
  dilation: [number, number];
  /** Rounds the output size up (a last partial window), as PyTorch's ceil_mode. */
  ceilMode: boolean;
  /** avgPool2d only: count padded cells in the divisor. */
  countIncludePad?: boolean;
  /** avgPool2d only: replaces the divisor when set. */
  divisorOverride?: number;
}

/**
 * One fused SGD update of a parameter, in place (torch.optim.SGD's rule).
 * Every view is contiguous, of the parameter's shape and dtype. Per
 * element, rounded to float32 as ATen's CPU ops round it: each product
 * once, each add with a scale (add(x, alpha=s)) as one fused multiply-add:
 *
 *     g = maximize ? -grad : grad
 *     d = weightDecay != 0 ? fma(weightDecay, p, g) : g
 *     buf = initBuffer ? d : fma(dampenedScale, d, momentum * buf)   (momentumBuffer given)
 *     d = nesterov ? fma(momentum, buf, d) : buf                      (momentumBuffer given)
 *     p = fma(negLr, d, p)
 */
export interface SgdStep<S extends BackendStorage = BackendStorage> {
  /** Which rule. */
  rule: 'sgd';
  /** Read and written. */
  param: View<S>;
  /** Read. */
  grad: View<S>;
  /** Read (unless initBuffer) and written; absent when momentum is 0. */
  momentumBuffer?: View<S>;
  /** The buffer's first step: it is set to d, not read (torch clones d into it). */
  initBuffer: boolean;
  /** float32 L2 penalty; 0 skips the term (so an inf parameter does not make 0 * inf). */
  weightDecay: number;
  /** float32 momentum factor. */
  momentum: number;
  /** float32 1 - dampening. */
  dampenedScale: number;
  /** float32 -lr. */
  negLr: number;
  /** Nesterov momentum. */
  nesterov: boolean;
  /** Ascend the objective. */
  maximize: boolean;
}

/**
 * One fused Adam/AdamW update of a parameter, in place (PyTorch 1.13's
 * single-tensor torch.optim.Adam rule). Every view is contiguous, of the
 * parameter's shape and dtype. Per element, rounded to float32 as ATen's
 * CPU ops round it: each product, quotient and sqrt once; an add with a
 * scale (add(x, alpha=s), addcmul: fma(s * a, b, v)) as one fused
 * multiply-add; addcdiv as p + (s * a) / b:
 *
 *     g = maximize ? -grad : grad
 *     p = p * paramScale                                   (AdamW's decoupled decay; 1 for Adam)
 *     g = weightDecay != 0 ? fma(weightDecay, p, g) : g    (Adam's L2 decay; 0 for AdamW)
 *     m = fma(oneMinusBeta1, g, beta1 * m)
 *     v = fma(oneMinusBeta2 * g, g, beta2 * v)
 *     vmax = max(vmax, v)                                  (maxExpAvgSq given: AMSGrad)
 *     denom = sqrt(amsgrad ? vmax : v) / biasCorrection2Sqrt + eps
 *     p = p + (negStepSize * m) / denom
 */
export interface AdamStep<S extends BackendStorage = BackendStorage> {
  /** Which rule. */
  rule: 'adam';
  /** Read and written. */
  param: View<S>;
  /** Read. */
  grad: View<S>;
  /** The running average of the gradient, read and written. */
  expAvg: View<S>;
  /** The running average of its square, read and written. */
  expAvgSq: View<S>;
  /** AMSGrad's running maximum of expAvgSq, read and written; absent without AMSGrad. */
  maxExpAvgSq?: View<S>;
  /** float32 multiplier of p before the step (1 - lr * weightDecay for AdamW, 1 for Adam). */
  paramScale: number;
  /** float32 L2 penalty added to the gradient; 0 skips the term. */
  weightDecay: number;
  /** float32 β1. */
  beta1: number;
  /** float32 1 - β1. */
  oneMinusBeta1: number;
  /** float32 β2. */
  beta2: number;
  /** float32 1 - β2. */
  oneMinusBeta2: number;
  /** float32 sqrt(1 - β2^t). */
  biasCorrection2Sqrt: number;
  /** float32 ε. */
  eps: number;
  /** float32 -lr / (1 - β1^t). */
  negStepSize: number;
  /** Ascend the objective. */
  maximize: boolean;
}

/** A fused optimizer update: one rule, applied to one parameter in one pass. */
export type OptimizerStep<S extends BackendStorage = BackendStorage> = SgdStep<S> | AdamStep<S>;

/**
 * The narrow interface every device implements. Primitives write into `out`
 * (preallocated by core, usually contiguous, possibly strided for in-place
 * and slice writes) and never read back: results stay on the device until
 * {@link Backend.read}. Inputs may be any strided view. Core has already
 * checked shapes and dtypes; a backend may assume them valid.
 */
export interface Backend<S extends BackendStorage = BackendStorage> {
  /** 'cpu', 'webgpu', ... — what `tensor.device` reports. */
  readonly name: string;

  // ---- memory ----
  /** Storage for `size` elements; its contents are unspecified. */
  alloc(size: number, dtype: DType): S;
  /** Returns storage to the backend (pooled, not necessarily freed). */
  release(storage: S): void;
  /** Copies host data into storage (length == storage.size). */
  write(storage: S, data: TypedArray): void;
  /** Reads a contiguous range of storage back to the host. */
  read(storage: S, offset: number, length: number): Promise<TypedArray>;
  /** Synchronous read; only backends whose memory is host memory have it. */
  readSync?(storage: S, offset: number, length: number): TypedArray;
  /** Bytes held by live storages and bytes kept in the pool for reuse. */
  memory(): {
    /** Bytes held by live storages. */ bytesInUse: number;
    /** Bytes kept for reuse. */ bytesPooled: number;
    /** Buffers ever created. */ buffersAllocated: number;
    /** Most bytes in use since the last reset, where tracked. */ peakBytesInUse?: number;
  };
  /** Starts a new high-water mark for memory().peakBytesInUse (backends that track their own). */
  resetPeakMemory?(): void;
  /** Submits queued work; resolves when the device has finished it. */
  sync(): Promise<void>;

  // ---- elementwise ----
  /** Writes `value` into every element of out. */
  fill(out: View<S>, value: number): void;
  /** out = cast(x), elementwise over out's shape (x broadcast by strides). */
  copy(x: View<S>, out: View<S>): void;
  /** out = op(x) elementwise over out's shape (x broadcast by strides). */
  unary(op: UnaryOp, x: View<S>, out: View<S>, params?: UnaryParams): void;
  /** out = a op b. A number operand is a scalar of out's compute dtype. */
  binary(op: BinaryOp, a: View<S> | number, b: View<S> | number, out: View<S>): void;
  /** out = cond ? a : b. */
  where(cond: View<S>, a: View<S> | number, b: View<S> | number, out: View<S>): void;
  /**
   * PyTorch's threshold_backward (relu's gradient): out = x <= threshold ? 0 : grad,
   * elementwise over out's shape, one pass. A NaN in x passes the gradient on
   * (NaN <= threshold is false); the result is a select, so a non-finite
   * gradient where x <= threshold still gives 0.
   */
  thresholdBackward(grad: View<S>, x: View<S>, threshold: number, out: View<S>): void;

  // ---- reductions ----
  /**
   * Reduces the last `reduceRank` dims of x into out (contiguous, shape =
   * x.shape without those dims). argmax/argmin write int32 flat indices into
   * the reduced block (first occurrence wins, as PyTorch).
   */
  reduce(op: ReduceOp, x: View<S>, reduceRank: number, out: View<S>): void;

  // ---- linear algebra ----
  /** out[b] = epilogue(a[b] @ b[b]) for rank-3 views a [B, M, K], b [B, K, N], out [B, M, N]. */
  matmul(a: View<S>, b: View<S>, out: View<S>, epilogue?: MatmulEpilogue<S>): void;

  // ---- indexing ----
  /** out[..., i, ...] = x[..., index[..., i, ...], ...] along `dim`; index is int32 with out's shape. */
  gather(x: View<S>, dim: number, index: View<S>, out: View<S>): void;
  /** out = x with out[idx] += src along dim (scatter_add_); used by gather's backward. */
  scatterAdd(out: View<S>, dim: number, index: View<S>, src: View<S>): void;
  /** out = x.index_select(dim, index) with a 1-D int32 index. */
  indexSelect(x: View<S>, dim: number, index: View<S>, out: View<S>): void;
  /** out (zeroed by core) += src rows: out.index_add_(dim, index, src). */
  indexAdd(out: View<S>, dim: number, index: View<S>, src: View<S>): void;

  // ---- CNN ----
  /** y = conv2d(x, w) (+bias per out channel, +residual, relu). x [N,C,H,W], w [O,C/g,kH,kW]. */
  conv2d(x: View<S>, w: View<S>, out: View<S>, p: Conv2dParams, epilogue?: Omit<MatmulEpilogue<S>, 'biasAxis' | 'alpha'>): void;
  /** dx from dy and w. */
  conv2dBackwardInput(dy: View<S>, w: View<S>, dx: View<S>, p: Conv2dParams): void;
  /** dw from x and dy. */
  conv2dBackwardWeight(x: View<S>, dy: View<S>, dw: View<S>, p: Conv2dParams): void;
  /** y = max over each window; indices (int32, flat h*W+w within the input plane) for backward. */
  maxPool2d(x: View<S>, out: View<S>, indices: View<S>, p: Pool2dParams): void;
  /** dx (all of it written) from dy and the argmax indices. */
  maxPool2dBackward(dy: View<S>, indices: View<S>, dx: View<S>, p: Pool2dParams): void;
  /** y = mean over each window (countIncludePad / divisorOverride as in `p`). */
  avgPool2d(x: View<S>, out: View<S>, p: Pool2dParams): void;
  /** dx (all of it written) from dy, each window's share spread evenly. */
  avgPool2dBackward(dy: View<S>, dx: View<S>, p: Pool2dParams): void;
  /** adaptive average pooling to out's H×W (PyTorch's start/end index rule). */
  adaptiveAvgPool2d(x: View<S>, out: View<S>): void;
  /** dx (all of it written) from dy of adaptiveAvgPool2d. */
  adaptiveAvgPool2dBackward(dy: View<S>, dx: View<S>): void;

  // ---- batch norm (fused: two passes forward, two backward) ----
  // x, dy, out, dx are contiguous [N, C, S]; the per-channel [C] operands
  // are contiguous too (core allocates them fresh).
  /**
   * Per-channel mean and biased variance of contiguous x [N, C, S] (C is
   * the channel dim, S the flattened spatial dims) into mean [C], variance [C].
   */
  batchNormStats(x: View<S>, mean: View<S>, variance: View<S>): void;
  /** out[n, c, s] = x[n, c, s] * scale[c] + shift[c] for contiguous [N, C, S] x and out. */
  channelAffine(x: View<S>, scale: View<S>, shift: View<S>, out: View<S>): void;
  /**
   * Per-channel sums for batch norm's backward over contiguous [N, C, S]:
   * sumDy[c] = Σ dy, sumDyXhat[c] = Σ dy * (x - mean[c]) * invStd[c].
   */
  batchNormBackwardReduce(dy: View<S>, x: View<S>, mean: View<S>, invStd: View<S>, sumDy: View<S>, sumDyXhat: View<S>): void;
  /**
   * dx = scale[c] * (dy - sumDy[c] / M - xhat * sumDyXhat[c] / M) with
   * xhat = (x - mean[c]) * invStd[c], M = N * S, scale = weight * invStd.
   */
  batchNormBackwardInput(dy: View<S>, x: View<S>, mean: View<S>, invStd: View<S>, scale: View<S>, sumDy: View<S>, sumDyXhat: View<S>, dx: View<S>): void;

  // ---- optimizers ----
  /** Applies one fused optimizer update in place: parameter and state read once, written once. */
  optimizerStep(step: OptimizerStep<S>): void;

  /** Frees everything the backend holds; the backend is unusable after. */
  destroy?(): void;
}

const registry = new Map<string, Backend>();
let defaultName = 'cpu';

/** Makes a backend available under its name; a later registration replaces an earlier one. */
export function registerBackend(backend: Backend): void {
  // float16 operands get float32 stand-ins in every primitive the backend does not run natively.
  installFloat16Fallback(backend);
  registry.set(backend.name, backend);
}

/** The backend registered under `name`; throws listing the registered ones if absent. */
export function getBackend(name?: string): Backend {
  const key = name ?? defaultName;
  const backend = registry.get(key);
  if (!backend) {
    const hint = key === 'webgpu' ? ' (call `await initWebGPU()` from @kiln/kernels first)' : '';
    throw new BackendError('getBackend', `no backend named '${key}'${hint}; registered: ${[...registry.keys()].join(', ') || 'none'}`);
  }
  return backend;
}

/** True when a backend named `name` is registered. */
export function hasBackend(name: string): boolean {
  return registry.has(name);
}

/** Names of every registered backend. */
export function listBackends(): string[] {
  return [...registry.keys()];
}

/** Makes `name` the backend new tensors are created on (PyTorch's default device). */
export function setDefaultBackend(name: string): void {
  getBackend(name);
  defaultName = name;
}

/** The name of the backend new tensors are created on. */
export function getDefaultBackend(): string {
  return defaultName;
}
