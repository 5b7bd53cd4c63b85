/**
 * Convs whose output is one pixel and whose window holds one input pixel:
 * a 3x3 pad-1 conv on a 1x1 input (ResNet18's layer4 at 32x32 inputs), a
 * 1x1 stride-2 conv on a 2x2 input (its downsample). Only one tap (kh, kw)
 * ever meets the image, so forward and input gradient are one GEMM over
 * that tap's weights, and the weight gradient is zero outside it: exact,
 * the same sums as the direct kernel without its zero products.
 *
 * With one output pixel per image, the images are the GEMM's columns (one
 * GEMM, no per-image batch that would fill 1 of a block's columns), read
 * through strided views of x / dy and of the weight's tap. On lavapipe at
 * batch 32 (the 32x32 demo's layer4.1.conv1, 512 -> 512, load 3-7) Winograd
 * F(4x4) took 26-79 ms forward and 36-74 ms for dx (36 transformed GEMMs
 * for one useful product), the dW kernel 38 ms (9 taps, 8 of them zero).
 */
import type { Conv2dParams, MatmulEpilogue, View } from '@kiln/core';
import type { OpContext } from '../backend.js';
import type { GPUStorage } from '../pool.js';
import { fill } from './elementwise.js';
import { gemm } from './matmul.js';

type GView = View<GPUStorage>;
type Epilogue = Omit<MatmulEpilogue<GPUStorage>, 'biasAxis' | 'alpha'>;

/** The one tap that reads the image: weight tap (kh, kw) and the input pixel (ih, iw) it reads. */
interface Tap {
  kh: number;
  kw: number;
  ih: number;
  iw: number;
}

/** The only in-image tap along one axis of a one-pixel output (kernel k, padding p, dilation d, input size n), or null. */
function axisTap(k: number, p: number, d: number, n: number): [number, number] | null {
  let found: [number, number] | null = null;
  for (let t = 0; t < k; t++) {
    const i = t * d - p;
    if (i < 0 || i >= n) continue;
    if (found) return null;
    found = [t, i];
  }
  return found;
}

/** The single tap of an ungrouped conv with a 1x1 output and one in-image tap per axis, else null. */
export function singleTap(x: readonly number[], w: readonly number[], out: readonly number[], p: Conv2dParams): Tap | null {
  if (p.groups !== 1 || out[2] !== 1 || out[3] !== 1) return null;
  const h = axisTap(w[2]!, p.padding[0], p.dilation[0], x[2]!);
  const v = axisTap(w[3]!, p.padding[1], p.dilation[1], x[3]!);
  return h && v ? { kh: h[0], kw: v[0], ih: h[1], iw: v[1] } : null;
}

/**
 * Zeroes a gradient view before its one tap or pixel is written: a dense
 * float32 view by the encoder's buffer clear (a memset; the elementwise
 * fill ran one invocation per element: 28 ms for layer4's 512x512x3x3 dW
 * on lavapipe, load 7, against the GEMM's 5), any other by the fill kernel.
 */
function zero(ctx: OpContext, v: GView): void {
  let size = 1;
  let dense = true;
  for (let d = v.shape.length - 1; d >= 0; d--) {
    if (v.shape[d] !== 1 && v.strides[d] !== size) dense = false;
    size *= v.shape[d]!;
  }
  if (dense && v.dtype === 'float32') ctx.rt.clearBuffer(v.storage.buffer, v.offset * 4, size * 4);
  else fill(ctx.rt, v, 0);
}

/** A [N, C, H, W] view's pixel (h, w) as a [1, rows, cols] matrix, rows/cols being dims `r`/`c` (0: N, 1: C). */
function pixel(v: GView, h: number, w: number, r: 0 | 1, c: 0 | 1): GView {
  return {
    ...v, shape: [1, v.shape[r]!, v.shape[c]!], strides: [0, v.strides[r]!, v.strides[c]!],
    offset: v.offset + h * v.strides[2]! + w * v.strides[3]!,
  };
}

/** out[n, o] = epilogue(sum_c w[o, c, kh, kw] x[n, c, ih, iw]) as out^T[O, N] = w_tap[O, C] @ x_pixel^T[C, N]; false: another route. */
export function conv2dSingleTap(ctx: OpContext, x: GView, w: GView, out: GView, p: Conv2dParams, e: Epilogue): boolean {
  const t = singleTap(x.shape, w.shape, out.shape, p);
  if (!t) return false;
  gemm(ctx, {
    a: pixel(w, t.kh, t.kw, 0, 1), b: pixel(x, t.ih, t.iw, 1, 0), out: pixel(out, 0, 0, 1, 0),
    bias: e.bias, biasAxis: 'm', residual: e.residual && pixel(e.residual, 0, 0, 1, 0), relu: e.relu,
  });
  return true;
}

/** dx[n, c, ih, iw] = sum_o dy[n, o] w[o, c, kh, kw] (dx^T = w_tap^T @ dy^T), zero at every other pixel; false: another route. */
export function conv2dBackwardInputSingleTap(ctx: OpContext, dy: GView, w: GView, dx: GView, p: Conv2dParams): boolean {
  const t = singleTap(dx.shape, w.shape, dy.shape, p);
  if (!t) return false;
  if (dx.shape[2]! * dx.shape[3]! > 1) zero(ctx, dx);
  gemm(ctx, { a: pixel(w, t.kh, t.kw, 1, 0), b: pixel(dy, 0, 0, 1, 0), out: pixel(dx, t.ih, t.iw, 1, 0) });
  return true;
}

/** dw[o, c, kh, kw] = sum_n dy[n, o] x[n, c, ih, iw], zero at every other tap; false: another route. */
export function conv2dBackwardWeightSingleTap(ctx: OpContext, x: GView, dy: GView, dw: GView, p: Conv2dParams): boolean {
  const t = singleTap(x.shape, dw.shape, dy.shape, p);
  if (!t) return false;
  if (dw.shape[2]! * dw.shape[3]! > 1) zero(ctx, dw);
  gemm(ctx, { a: pixel(dy, 0, 0, 1, 0), b: pixel(x, t.ih, t.iw, 0, 1), out: pixel(dw, t.kh, t.kw, 0, 1) });
  return true;
}
