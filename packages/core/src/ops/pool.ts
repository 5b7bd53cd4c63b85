import { Tensor } from '../tensor.js';
import { isFloating } from '../dtype.js';
import type { Pool2dParams } from '../backend.js';
import { DTypeError, KilnError, ShapeError, fmtShape } from '../errors.js';
import { commonBackend, empty, checkAlive } from './util.js';
import { finish } from '../autograd/record.js';
import { tidy } from '../memory.js';
import { pair, type Pair } from './conv.js';
import { traceOp } from './trace.js';

/** Options of maxPool2d / avgPool2d, as torch.nn.functional's. */
export interface Pool2dOptions {
  /** Defaults to the kernel size. */
  stride?: Pair | null;
  /** Implicit padding on each side. Default 0. */
  padding?: Pair;
  /** Spacing between window taps (max pooling). Default 1. */
  dilation?: Pair;
  /** Rounds the output size up (a last partial window). Default false. */
  ceilMode?: boolean;
  /** avgPool2d: count zero padding in the divisor (default true). */
  countIncludePad?: boolean;
  /** avgPool2d: divide by this instead of the window size. */
  divisorOverride?: number;
}

/** PyTorch's pooling_output_shape, including the ceil-mode rule that a window must start inside the input or left padding. */
function poolOutSize(op: string, inSize: number, k: number, s: number, p: number, d: number, ceil: boolean): number {
  const num = inSize + 2 * p - d * (k - 1) - 1 + (ceil ? s - 1 : 0);
  let out = Math.floor(num / s) + 1;
  if (ceil && (out - 1) * s >= inSize + p) out--;
  if (out < 1) throw new ShapeError(op, `output size is too small: input ${inSize}, kernel ${k}, stride ${s}, padding ${p}, dilation ${d} gives ${out}`);
  return out;
}

function params(op: string, x: Tensor, kernel: Pair, o: Pool2dOptions): { p: Pool2dParams; outShape: number[] } {
  if (x.dim() !== 4) throw new ShapeError(op, `expected a 4-D NCHW input (3-D is unsqueezed by the caller), got ${fmtShape(x.shape)}`);
  if (!isFloating(x.dtype)) throw new DTypeError(op, `expected a float input, got ${x.dtype}`);
  const k = pair(op, 'kernel_size', kernel);
  const stride = o.stride == null ? k : pair(op, 'stride', o.stride);
  const padding = pair(op, 'padding', o.padding ?? 0);
  const dilation = pair(op, 'dilation', o.dilation ?? 1);
  if (k.some((v) => v < 1) || stride.some((v) => v < 1) || dilation.some((v) => v < 1)) {
    throw new KilnError(op, `kernel_size, stride and dilation must be positive, got kernel ${fmtShape(k)}, stride ${fmtShape(stride)}, dilation ${fmtShape(dilation)}`);
  }
  if (padding.some((v, i) => v < 0 || v > Math.floor(k[i]! / 2))) {
    throw new KilnError(op, `pad should be at most half of effective kernel size, but got pad=${fmtShape(padding)} and kernel_size=${fmtShape(k)}`);
  }
  const ceilMode = o.ceilMode ?? false;
  const [N, C, H, W] = x.shape as [number, number, number, number];
  const oH = poolOutSize(op, H, k[0], stride[0], padding[0], dilation[0], ceilMode);
  const oW = poolOutSize(op, W, k[1], stride[1], padding[1], dilation[1], ceilMode);
  if (o.divisorOverride !== undefined && o.divisorOverride === 0) throw new KilnError(op, 'divisor must be not zero');
  return {
    p: { kernel: k, stride, padding, dilation, ceilMode, countIncludePad: o.countIncludePad ?? true, divisorOverride: o.divisorOverride },
    outShape: [N, C, oH, oW],
  };
}

function unbatched<T>(x: Tensor, fn: (x4: Tensor) => T, squeeze: (r: T) => T): T {
  return tidy(() => squeeze(fn(x.unsqueeze(0))));
}

/** What {@link maxPool2dWithIndices} returns. */
export interface MaxPoolWithIndices {
  /** The pooled maxima. */
  values: Tensor;
  /** int32 flat index (h * W + w) of each maximum in its input plane. */
  indices: Tensor;
}

/** Max pooling; with returnIndices also the flat (h*W+w) argmax per output. */
export function maxPool2dWithIndices(x: Tensor, kernel: Pair, opts: Pool2dOptions = {}): MaxPoolWithIndices {
  checkAlive('maxPool2d', x);
  if (x.dim() === 3) return unbatched(x, (x4) => maxPool2dWithIndices(x4, kernel, opts), (r) => ({ values: r.values.squeeze(0), indices: r.indices.squeeze(0) }));
  const { p, outShape } = params('maxPool2d', x, kernel, opts);
  const backend = commonBackend('maxPool2d', [x]);
  const values = empty(outShape, x.dtype, backend);
  const indices = empty(outShape, 'int32', backend);
  if (values.numel() > 0) backend.maxPool2d(x._view(), values._view(), indices._view(), p);
  // The backward needs the argmax. When x's producer keeps x for its own
  // backward (relu_ before the pool, as in ResNet's stem), saving x costs no
  // bytes and the backward recomputes the indices from it (the same kernel
  // on the same values: the same indices); else the int32 indices are saved.
  const savesInput = x.gradFn?._keepsStorageOf(x) ?? false;
  finish(values, 'maxPool2d', [x], { ...p }, [savesInput ? x : indices], (g, [s]) => {
    let idx = s!;
    if (savesInput) {
      idx = empty(outShape, 'int32', backend);
      const v = empty(outShape, s!.dtype, backend);
      if (v.numel() > 0) backend.maxPool2d(s!._view(), v._view(), idx._view(), p);
      v.dispose();
    }
    const dx = empty(x.shape, x.dtype, backend);
    if (dx.numel() > 0) backend.maxPool2dBackward(g.contiguous()._view(), idx._view(), dx._view(), p);
    if (idx !== s) idx.dispose();
    return [dx];
  });
  // Kiln's indices are per plane (h * W + w): traced under their own name so an exporter can refuse them rather than see a constant.
  traceOp('maxPool2dIndices', [x], { ...p }, [indices]);
  return { values, indices };
}

/** Max pooling over NCHW (or CHW) input (torch.nn.functional.max_pool2d). */
export function maxPool2d(x: Tensor, kernel: Pair, opts: Pool2dOptions = {}): Tensor {
  const { values, indices } = maxPool2dWithIndices(x, kernel, opts);
  indices.dispose();
  return values;
}

/** Average pooling over NCHW (or CHW) input (torch.nn.functional.avg_pool2d). */
export function avgPool2d(x: Tensor, kernel: Pair, opts: Pool2dOptions = {}): Tensor {
  checkAlive('avgPool2d', x);
  if (x.dim() === 3) return unbatched(x, (x4) => avgPool2d(x4, kernel, opts), (r) => r.squeeze(0));
  if (opts.dilation !== undefined && pair('avgPool2d', 'dilation', opts.dilation).some((d) => d !== 1)) {
    throw new KilnError('avgPool2d', 'avg_pool2d has no dilation argument');
  }
  const { p, outShape } = params('avgPool2d', x, kernel, opts);
  const backend = commonBackend('avgPool2d', [x]);
  const out = empty(outShape, x.dtype, backend);
  if (out.numel() > 0) backend.avgPool2d(x._view(), out._view(), p);
  return finish(out, 'avgPool2d', [x], { ...p }, [], (g) => {
    const dx = empty(x.shape, x.dtype, backend);
    if (dx.numel() > 0) backend.avgPool2dBackward(g.contiguous()._view(), dx._view(), p);
    return [dx];
  });
}

/** Adaptive average pooling to outputSize (an int, or [h, w] where null keeps that input size). */
export function adaptiveAvgPool2d(x: Tensor, outputSize: number | readonly [number | null, number | null]): Tensor {
  checkAlive('adaptiveAvgPool2d', x);
  if (x.dim() === 3) return unbatched(x, (x4) => adaptiveAvgPool2d(x4, outputSize), (r) => r.squeeze(0));
  if (x.dim() !== 4) throw new ShapeError('adaptiveAvgPool2d', `expected 3-D or 4-D input, got ${fmtShape(x.shape)}`);
  if (!isFloating(x.dtype)) throw new DTypeError('adaptiveAvgPool2d', `expected a float input, got ${x.dtype}`);
  const [N, C, H, W] = x.shape as [number, number, number, number];
  const [oh, ow] = typeof outputSize === 'number' ? [outputSize, outputSize] : outputSize;
  const oH = oh ?? H;
  const oW = ow ?? W;
  if (!(oH >= 1 && oW >= 1) || !Number.isInteger(oH) || !Number.isInteger(oW)) throw new KilnError('adaptiveAvgPool2d', `output size must be positive integers, got ${JSON.stringify(outputSize)}`);
  if (H === 0 || W === 0) throw new ShapeError('adaptiveAvgPool2d', `expected input with non-zero spatial size, got ${fmtShape(x.shape)}`);
  const backend = commonBackend('adaptiveAvgPool2d', [x]);
  const out = empty([N, C, oH, oW], x.dtype, backend);
  if (out.numel() > 0) backend.adaptiveAvgPool2d(x._view(), out._view());
  return finish(out, 'adaptiveAvgPool2d', [x], { outputSize: [oH, oW] }, [], (g) => {
    const dx = empty(x.shape, x.dtype, backend);
    if (dx.numel() > 0) backend.adaptiveAvgPool2dBackward(g.contiguous()._view(), dx._view());
    return [dx];
  });
}
