import type { Backend, BinaryOp, Conv2dParams, MatmulEpilogue, OptimizerStep, Pool2dParams, ReduceOp, UnaryOp, UnaryParams, View } from '../backend.js';
import { registerBackend } from '../backend.js';
import { itemSize, type DType, type TypedArray } from '../dtype.js';
import { CpuStorage } from './storage.js';
import { cpuBinary, cpuCopy, cpuFill, cpuThresholdBackward, cpuUnary, cpuWhere } from './elementwise.js';
import { cpuReduce } from './reduce.js';
import { cpuMatmul } from './linalg.js';
import { cpuQuantMatmul } from './qgemm.js';
import { cpuQuantConv2d } from './qconv.js';
import { cpuGather, cpuIndexAdd, cpuIndexSelect, cpuScatterAdd } from './indexing.js';
import { cpuConv2d, cpuConv2dBackwardInput, cpuConv2dBackwardWeight } from './conv.js';
import {
  cpuAdaptiveAvgPool2d,
  cpuAdaptiveAvgPool2dBackward,
  cpuAvgPool2d,
  cpuAvgPool2dBackward,
  cpuMaxPool2d,
  cpuMaxPool2dBackward,
} from './pool.js';
import { cpuBatchNormBackwardInput, cpuBatchNormBackwardReduce, cpuBatchNormStats, cpuChannelAffine } from './norm.js';
import { cpuOptimizerStep } from './optim.js';

/** What {@link CpuBackend.memory} returns. */
export interface CpuMemoryStats {
  /** Bytes held by live storages. */
  bytesInUse: number;
  /** Always 0: host arrays are garbage-collected, not pooled. */
  bytesPooled: number;
  /** Arrays ever allocated. */
  buffersAllocated: number;
}

/**
 * The reference backend: every primitive in plain TypeScript loops over
 * host arrays. Readable first; it defines what the fast backends compute.
 */
export class CpuBackend implements Backend<CpuStorage> {
  readonly name = 'cpu';
  private bytesInUse = 0;
  private allocated = 0;

  alloc(size: number, dtype: DType): CpuStorage {
    this.bytesInUse += size * itemSize(dtype);
    this.allocated++;
    return new CpuStorage(size, dtype);
  }
  release(storage: CpuStorage): void {
    this.bytesInUse -= storage.size * itemSize(storage.dtype);
  }
  write(storage: CpuStorage, data: TypedArray): void {
    storage.data.set(data);
  }
  async read(storage: CpuStorage, offset: number, length: number): Promise<TypedArray> {
    return this.readSync(storage, offset, length);
  }
  readSync(storage: CpuStorage, offset: number, length: number): TypedArray {
    return storage.data.slice(offset, offset + length);
  }
  /** Bytes held by live host arrays; nothing is pooled (the garbage collector frees them). */
  memory(): CpuMemoryStats {
    // Host arrays are garbage-collected, not pooled.
    return { bytesInUse: this.bytesInUse, bytesPooled: 0, buffersAllocated: this.allocated };
  }
  async sync(): Promise<void> {}

  fill(out: View, value: number): void { cpuFill(out, value); }
  copy(x: View, out: View): void { cpuCopy(x, out); }
  unary(op: UnaryOp, x: View, out: View, params?: UnaryParams): void { cpuUnary(op, x, out, params); }
  binary(op: BinaryOp, a: View | number, b: View | number, out: View): void { cpuBinary(op, a, b, out); }
  where(cond: View, a: View | number, b: View | number, out: View): void { cpuWhere(cond, a, b, out); }
  thresholdBackward(grad: View, x: View, threshold: number, out: View): void { cpuThresholdBackward(grad, x, threshold, out); }
  reduce(op: ReduceOp, x: View, reduceRank: number, out: View): void { cpuReduce(op, x, reduceRank, out); }
  matmul(a: View, b: View, out: View, epilogue?: MatmulEpilogue): void {
    if (epilogue?.quant) cpuQuantMatmul(a, b, out, { ...epilogue, quant: epilogue.quant });
    else cpuMatmul(a, b, out, epilogue);
  }
  gather(x: View, dim: number, index: View, out: View): void { cpuGather(x, dim, index, out); }
  scatterAdd(out: View, dim: number, index: View, src: View): void { cpuScatterAdd(out, dim, index, src); }
  indexSelect(x: View, dim: number, index: View, out: View): void { cpuIndexSelect(x, dim, index, out); }
  indexAdd(out: View, dim: number, index: View, src: View): void { cpuIndexAdd(out, dim, index, src); }
  conv2d(x: View, w: View, out: View, p: Conv2dParams, ep?: Omit<MatmulEpilogue, 'biasAxis' | 'alpha'>): void {
    if (ep?.quant) cpuQuantConv2d(x, w, out, p, { ...ep, quant: ep.quant });
    else cpuConv2d(x, w, out, p, ep);
  }
  conv2dBackwardInput(dy: View, w: View, dx: View, p: Conv2dParams): void { cpuConv2dBackwardInput(dy, w, dx, p); }
  conv2dBackwardWeight(x: View, dy: View, dw: View, p: Conv2dParams): void { cpuConv2dBackwardWeight(x, dy, dw, p); }
  maxPool2d(x: View, out: View, indices: View, p: Pool2dParams): void { cpuMaxPool2d(x, out, indices, p); }
  maxPool2dBackward(dy: View, indices: View, dx: View): void { cpuMaxPool2dBackward(dy, indices, dx); }
  avgPool2d(x: View, out: View, p: Pool2dParams): void { cpuAvgPool2d(x, out, p); }
  avgPool2dBackward(dy: View, dx: View, p: Pool2dParams): void { cpuAvgPool2dBackward(dy, dx, p); }
  adaptiveAvgPool2d(x: View, out: View): void { cpuAdaptiveAvgPool2d(x, out); }
  adaptiveAvgPool2dBackward(dy: View, dx: View): void { cpuAdaptiveAvgPool2dBackward(dy, dx); }
  batchNormStats(x: View, mean: View, variance: View): void { cpuBatchNormStats(x, mean, variance); }
  channelAffine(x: View, scale: View, shift: View, out: View): void { cpuChannelAffine(x, scale, shift, out); }
  batchNormBackwardReduce(dy: View, x: View, mean: View, invStd: View, sumDy: View, sumDyXhat: View): void {
    cpuBatchNormBackwardReduce(dy, x, mean, invStd, sumDy, sumDyXhat);
  }
  batchNormBackwardInput(dy: View, x: View, mean: View, invStd: View, scale: View, sumDy: View, sumDyXhat: View, dx: View): void {
    cpuBatchNormBackwardInput(dy, x, mean, invStd, scale, sumDy, sumDyXhat, dx);
  }
  optimizerStep(step: OptimizerStep): void { cpuOptimizerStep(step); }
}

/** The process-wide CPU backend, registered as 'cpu' when core loads. */
export const cpuBackend = new CpuBackend();
registerBackend(cpuBackend);
