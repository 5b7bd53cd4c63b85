/**
 * WebGPUBackend: Kiln's Backend interface on a GPUDevice. Memory comes from
 * the buffer pool, every primitive encodes one or more compute dispatches
 * into the runtime's current batch, and only read()/sync() wait.
 */
import {
  BackendError,
  type Backend, type BinaryOp, type Conv2dParams, type DType, type MatmulEpilogue, type Pool2dParams,
  type OptimizerStep, type ReduceOp, type TypedArray, type UnaryOp, type UnaryParams, type View,
} from '@kiln/core';
import type { AdapterInfo } from './device.js';
import { GPUStorage } from './pool.js';
import type { KernelTime } from './profiler.js';
import { Runtime, type RuntimeOptions } from './runtime.js';
import { chooseTuning, requestedStrategy, type GemmStrategy, type KernelStrategy, type KernelTuning } from './tuning.js';
import * as ew from './ops/elementwise.js';
import { reduce } from './ops/reduce.js';
import { matmul } from './ops/matmul.js';
import * as idx from './ops/indexing.js';
import * as conv from './ops/conv.js';
import { forgetFilters } from './ops/winograd.js';
import * as pool from './ops/pool.js';
import * as norm from './ops/norm.js';
import { optimizerStep } from './ops/optim.js';
import { anyPacked, isPacked, packHost, packedRange, storageBytes, withWords } from './ops/packed.js';
import { gemmInt8 } from './ops/matmul-int8.js';
import { conv2dInt8 } from './ops/conv-int8.js';
import { copyHalf, halfHostBytes, halfRange } from './ops/half.js';

type GView = View<GPUStorage>;

/** Options of {@link WebGPUBackend}. */
export interface WebGPUBackendOptions extends RuntimeOptions {
  /** Forces a GEMM strategy instead of the tuning table's choice. */
  gemm?: GemmStrategy;
  /**
   * The kernel strategy class: 'gpu' (what a real GPU gets), 'cpu-like'
   * (what lavapipe gets) or 'auto' (the adapter's class); default
   * `KILN_KERNEL_STRATEGY`, else 'auto'. See tuning.ts.
   */
  strategy?: KernelStrategy;
}

/** The context every op module receives. */
export interface OpContext {
  rt: Runtime;
  gemm: GemmStrategy;
  /** Block shapes and subgroup use for this adapter. */
  tuning: KernelTuning;
  /** The device's WGSL language features (packed_4x8_integer_dot_product picks the int8 GEMM's dot path). */
  wgslFeatures: readonly string[];
  alloc(size: number, dtype: DType): GPUStorage;
  release(s: GPUStorage): void;
}

export class WebGPUBackend implements Backend<GPUStorage> {
  readonly name = 'webgpu';
  /** Primitives that read and write float16 views themselves (the elementwise, reduction, GEMM, conv, batch-norm and pooling generators' float16 flags); the rest get core's float32 stand-ins. */
  readonly nativeFloat16: ReadonlySet<string> = new Set([
    'unary', 'binary', 'where', 'thresholdBackward', 'reduce', 'matmul', 'conv2d', 'conv2dBackwardInput', 'conv2dBackwardWeight',
    'batchNormStats', 'channelAffine', 'batchNormBackwardReduce', 'batchNormBackwardInput',
    'maxPool2d', 'maxPool2dBackward', 'avgPool2d', 'avgPool2dBackward', 'adaptiveAvgPool2d', 'adaptiveAvgPool2dBackward',
  ]);
  /** The command batching, pipeline cache, buffer pools and error scopes under this backend. */
  readonly runtime: Runtime;
  /** Holds the object the device came from (dawn.node's GPU must outlive the device). */
  keepAlive: unknown = null;
  private readonly ctx: OpContext;
  private readonly gemmOption?: GemmStrategy;
  private destroyed = false;

  /**
   * Wraps an acquired device; initWebGPU() does this and registers the result.
   * @param device The device every kernel runs on.
   * @param info What the adapter is and can do.
   * @param options Strategy overrides and runtime options (see {@link WebGPUBackendOptions}).
   */
  constructor(readonly device: GPUDevice, readonly info: AdapterInfo, options: WebGPUBackendOptions = {}) {
    this.runtime = new Runtime(device, options);
    this.gemmOption = options.gemm;
    const tuning = this.resolve(requestedStrategy(options.strategy));
    this.ctx = {
      rt: this.runtime, gemm: tuning.gemm, tuning, wgslFeatures: info.wgslLanguageFeatures ?? [],
      alloc: (s, d) => this.alloc(s, d), release: (s) => this.release(s),
    };
  }

  /** The GEMM strategy in use ('register' for CPU adapters, 'tiled' otherwise). */
  get gemm(): GemmStrategy {
    return this.ctx.gemm;
  }

  /** The kernel choices in use: strategy class, tuning table row, subgroup size, conv routes (tuning.ts). */
  get tuning(): Readonly<KernelTuning> {
    return this.ctx.tuning;
  }

  /**
   * Switches the kernel strategy class for every later dispatch (tensors and
   * cached pipelines stay valid): 'gpu' runs the kernels a real GPU gets on
   * any adapter, 'cpu-like' those of lavapipe, 'auto' the adapter's own.
   * Tests use it to run one suite under both classes; returns the new choices.
   */
  setStrategy(strategy: KernelStrategy): Readonly<KernelTuning> {
    const tuning = this.resolve(strategy);
    this.ctx.tuning = tuning;
    this.ctx.gemm = tuning.gemm;
    return tuning;
  }

  private resolve(strategy: KernelStrategy): KernelTuning {
    const tuning = chooseTuning(this.info, strategy);
    if (this.gemmOption) tuning.gemm = this.gemmOption;
    return tuning;
  }

  // ---- memory ----
  alloc(size: number, dtype: DType): GPUStorage {
    this.live();
    const buffer = this.runtime.storagePool.acquire(Math.max(4, storageBytes(size, dtype)));
    return new GPUStorage(size, dtype, buffer);
  }

  release(storage: GPUStorage): void {
    if (!storage.live || this.destroyed) return;
    storage.live = false;
    // Winograd filter transforms cached for this buffer go with it.
    forgetFilters(this.ctx, storage.buffer);
    this.runtime.storagePool.recycle(storage.buffer);
  }

  write(storage: GPUStorage, data: TypedArray): void {
    this.live('write');
    if (data.length !== storage.size) {
      throw new BackendError('write', `expected ${storage.size} elements for a ${storage.dtype} storage, got ${data.length}`);
    }
    if (storage.dtype === 'float16') {
      const bytes = halfHostBytes(data as Uint16Array);
      this.runtime.write(storage.buffer, bytes, bytes.length);
      return;
    }
    if (isPacked(storage.dtype)) {
      const packed = packHost(data);
      this.runtime.write(storage.buffer, packed, packed.length);
      return;
    }
    const words = data instanceof Float32Array || data instanceof Int32Array ? data : Int32Array.from(data);
    this.runtime.write(storage.buffer, words, storage.size * 4);
  }

  async read(storage: GPUStorage, offset: number, length: number): Promise<TypedArray> {
    this.live('read');
    if (offset < 0 || length < 0 || offset + length > storage.size) {
      throw new BackendError('read', `range [${offset}, ${offset + length}) outside a storage of ${storage.size} elements`);
    }
    if (storage.dtype === 'float16') {
      const r = halfRange(offset, length);
      const bytes = await this.runtime.read(storage.buffer, r.start, r.bytes);
      return new Uint16Array(bytes, r.skip * 2, length);
    }
    if (isPacked(storage.dtype)) {
      const r = packedRange(offset, length);
      const bytes = await this.runtime.read(storage.buffer, r.start, r.bytes);
      const Ctor = storage.dtype === 'int8' ? Int8Array : Uint8Array;
      return new Ctor(bytes, r.skip, length);
    }
    const bytes = await this.runtime.read(storage.buffer, offset * 4, length * 4);
    switch (storage.dtype) {
      case 'float32': return new Float32Array(bytes);
      case 'int32': return new Int32Array(bytes);
      case 'int8': return Int8Array.from(new Int32Array(bytes));
      case 'uint8':
      case 'bool': return Uint8Array.from(new Int32Array(bytes));
    }
  }

  /** Pool statistics; peakBytesInUse is the storage pool's high-water mark since resetPeakMemory(). */
  memory(): {
    /** Bytes of storage buffers held by live tensors. */
    bytesInUse: number;
    /** Bytes of free buffers kept for reuse (storage and staging). */
    bytesPooled: number;
    /** Buffers ever created (storage and staging). */
    buffersAllocated: number;
    /** The storage pool's high-water mark since resetPeakMemory(). */
    peakBytesInUse: number;
  } {
    const s = this.runtime.storagePool;
    const st = this.runtime.stagingPool;
    return { bytesInUse: s.bytesInUse, bytesPooled: s.bytesPooled + st.bytesPooled, buffersAllocated: s.created + st.created, peakBytesInUse: s.peakBytesInUse };
  }

  /** Starts a new high-water mark of the storage pool (memory().peakBytesInUse). */
  resetPeakMemory(): void {
    this.runtime.storagePool.resetPeak();
  }

  async sync(): Promise<void> {
    this.live('sync');
    await this.runtime.sync();
  }

  /** Submits queued work without waiting for it. */
  flush(): void {
    this.runtime.flush();
  }

  /**
   * Runs `fn` and returns per-kernel GPU time of everything it dispatched
   * (timestamp queries when the adapter has them, else wall clock around a
   * flushed queue), slowest first.
   */
  async profile(fn: () => unknown | Promise<unknown>): Promise<KernelTime[]> {
    this.runtime.flush();
    this.runtime.profiler.start();
    let failure: unknown = null;
    try {
      await fn();
      this.runtime.flush();
    } catch (e) {
      failure = e;
    }
    const times = await this.runtime.profiler.stop();
    if (failure) throw failure;
    return times;
  }

  /** True after destroy(). */
  get isDestroyed(): boolean {
    return this.destroyed;
  }

  /**
   * True once the device is lost (device.destroy(), a driver reset, a GPU
   * removed): every op, read and tensor of this backend throws a
   * BackendError saying so, and initWebGPU() acquires a new device.
   */
  get isLost(): boolean {
    return this.runtime.lostReason !== null;
  }

  /**
   * Most bytes of GPU memory tensor storage may hold, live plus pooled
   * (Infinity: no cap); see WebGPUBackendOptions.memoryCap.
   */
  get memoryCap(): number {
    return this.runtime.storagePool.memoryCap;
  }

  /** Sets the cap (Infinity removes it); see the getter. */
  set memoryCap(bytes: number) {
    this.runtime.storagePool.memoryCap = bytes;
  }

  private live(op = 'webgpu'): void {
    if (this.runtime.lostReason !== null) throw this.runtime.lostError(op);
    if (this.destroyed) throw new BackendError(op, 'the WebGPU backend was destroyed');
  }

  // ---- elementwise ----
  // Packed int8/uint8 operands run through int32 stand-ins (ops/packed.ts).
  fill(out: GView, value: number): void {
    if (anyPacked(out)) return withWords(this.ctx, [], [out], false, (_, [o]) => ew.fill(this.runtime, o, value));
    ew.fill(this.runtime, out, value);
  }
  copy(x: GView, out: GView): void {
    if (x.dtype === 'float16' || out.dtype === 'float16') return copyHalf(this.ctx, x, out, (a, b) => this.copy(a, b));
    if (anyPacked(x, out)) return withWords(this.ctx, [x], [out], false, ([i], [o]) => ew.copy(this.runtime, i, o));
    ew.copy(this.runtime, x, out);
  }
  /** out = op(x) elementwise. */
  unary(op: UnaryOp, x: GView, out: GView, params?: UnaryParams): void {
    if (anyPacked(x, out)) return withWords(this.ctx, [x], [out], false, ([i], [o]) => ew.unary(this.runtime, op, i, o, params));
    ew.unary(this.runtime, op, x, out, params);
  }
  binary(op: BinaryOp, a: GView | number, b: GView | number, out: GView): void {
    if (anyPacked(a, b, out)) return withWords(this.ctx, [a, b], [out], false, ([i, j], [o]) => ew.binary(this.runtime, op, i, j, o));
    ew.binary(this.runtime, op, a, b, out);
  }
  where(cond: GView, a: GView | number, b: GView | number, out: GView): void {
    if (anyPacked(cond, a, b, out)) return withWords(this.ctx, [cond, a, b], [out], false, ([c, i, j], [o]) => ew.where(this.runtime, c, i, j, o));
    ew.where(this.runtime, cond, a, b, out);
  }
  /** out = x <= threshold ? 0 : grad in one dispatch (relu's backward). */
  thresholdBackward(grad: GView, x: GView, threshold: number, out: GView): void {
    ew.thresholdBackward(this.runtime, grad, x, threshold, out);
  }

  // ---- reductions ----
  reduce(op: ReduceOp, x: GView, reduceRank: number, out: GView): void {
    if (anyPacked(x, out)) return withWords(this.ctx, [x], [out], false, ([i], [o]) => reduce(this.runtime, op, i, reduceRank, o));
    reduce(this.runtime, op, x, reduceRank, out);
  }

  // ---- linear algebra ----
  matmul(a: GView, b: GView, out: GView, epilogue?: MatmulEpilogue<GPUStorage>): void {
    if (epilogue?.quant) gemmInt8(this.ctx, a, b, out, { ...epilogue, quant: epilogue.quant });
    else matmul(this.ctx, a, b, out, epilogue);
  }

  // ---- indexing ----
  gather(x: GView, dim: number, index: GView, out: GView): void {
    if (anyPacked(x, index, out)) return withWords(this.ctx, [x, index], [out], false, ([i, j], [o]) => idx.gather(this.runtime, i, dim, j, o));
    idx.gather(this.runtime, x, dim, index, out);
  }
  scatterAdd(out: GView, dim: number, index: GView, src: GView): void {
    if (anyPacked(out, index, src)) return withWords(this.ctx, [index, src], [out], true, ([j, s], [o]) => idx.scatterAdd(this.runtime, o, dim, j, s));
    idx.scatterAdd(this.runtime, out, dim, index, src);
  }
  indexSelect(x: GView, dim: number, index: GView, out: GView): void {
    if (anyPacked(x, index, out)) return withWords(this.ctx, [x, index], [out], false, ([i, j], [o]) => idx.indexSelect(this.runtime, i, dim, j, o));
    idx.indexSelect(this.runtime, x, dim, index, out);
  }
  indexAdd(out: GView, dim: number, index: GView, src: GView): void {
    if (anyPacked(out, index, src)) return withWords(this.ctx, [index, src], [out], true, ([j, s], [o]) => idx.indexAdd(this.runtime, o, dim, j, s));
    idx.indexAdd(this.runtime, out, dim, index, src);
  }

  // ---- CNN ----
  conv2d(x: GView, w: GView, out: GView, p: Conv2dParams, epilogue?: Omit<MatmulEpilogue<GPUStorage>, 'biasAxis' | 'alpha'>): void {
    if (epilogue?.quant) conv2dInt8(this.ctx, x, w, out, p, { ...epilogue, quant: epilogue.quant });
    else conv.conv2d(this.ctx, x, w, out, p, epilogue);
  }
  conv2dBackwardInput(dy: GView, w: GView, dx: GView, p: Conv2dParams): void { conv.conv2dBackwardInput(this.ctx, dy, w, dx, p); }
  conv2dBackwardWeight(x: GView, dy: GView, dw: GView, p: Conv2dParams): void { conv.conv2dBackwardWeight(this.ctx, x, dy, dw, p); }
  maxPool2d(x: GView, out: GView, indices: GView, p: Pool2dParams): void { pool.maxPool2d(this.ctx, x, out, indices, p); }
  maxPool2dBackward(dy: GView, indices: GView, dx: GView, p: Pool2dParams): void { pool.maxPool2dBackward(this.ctx, dy, indices, dx, p); }
  /** Average pooling (see Backend.avgPool2d). */
  avgPool2d(x: GView, out: GView, p: Pool2dParams): void { pool.avgPool2d(this.ctx, x, out, p); }
  /** Average pooling's input gradient. */
  avgPool2dBackward(dy: GView, dx: GView, p: Pool2dParams): void { pool.avgPool2dBackward(this.ctx, dy, dx, p); }
  adaptiveAvgPool2d(x: GView, out: GView): void { pool.adaptiveAvgPool2d(this.ctx, x, out); }
  /** Adaptive average pooling's input gradient. */
  adaptiveAvgPool2dBackward(dy: GView, dx: GView): void { pool.adaptiveAvgPool2dBackward(this.ctx, dy, dx); }
  batchNormStats(x: GView, mean: GView, variance: GView): void { norm.batchNormStats(this.ctx, x, mean, variance); }
  channelAffine(x: GView, scale: GView, shift: GView, out: GView): void { norm.channelAffine(this.ctx, x, scale, shift, out); }
  batchNormBackwardReduce(dy: GView, x: GView, mean: GView, invStd: GView, sumDy: GView, sumDyXhat: GView): void {
    norm.batchNormBackwardReduce(this.ctx, dy, x, mean, invStd, sumDy, sumDyXhat);
  }
  batchNormBackwardInput(dy: GView, x: GView, mean: GView, invStd: GView, scale: GView, sumDy: GView, sumDyXhat: GView, dx: GView): void {
    norm.batchNormBackwardInput(this.ctx, dy, x, mean, invStd, scale, sumDy, sumDyXhat, dx);
  }

  // ---- optimizers ----
  optimizerStep(step: OptimizerStep<GPUStorage>): void { optimizerStep(this.ctx, step); }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.runtime.destroy();
    this.keepAlive = null;
  }
}
