import type { Pool2dParams, View } from '../backend.js';
import { arr, gatherView, offsetsOf } from './strided.js';

function dims(v: View): [number, number, number, number] {
  return v.shape as [number, number, number, number];
}

function writeOut(out: View, data: ArrayLike<number>): void {
  const dst = arr(out);
  const offs = offsetsOf(out.shape, out.strides, out.offset);
  for (let i = 0; i < offs.length; i++) dst[offs[i]!] = data[i]!;
}

export function cpuMaxPool2d(x: View, out: View, indices: View, p: Pool2dParams): void {
  const [N, C, H, W] = dims(x);
  const [, , oH, oW] = dims(out);
  const X = gatherView(x);
  const y = new Float32Array(N * C * oH * oW);
  const ix = new Int32Array(y.length);
  let o = 0;
  for (let plane = 0; plane < N * C; plane++) {
    const base = plane * H * W;
    for (let oi = 0; oi < oH; oi++) {
      for (let oj = 0; oj < oW; oj++) {
        let best = -Infinity;
        let bestI = -1;
        for (let ki = 0; ki < p.kernel[0]; ki++) {
          const h = oi * p.stride[0] - p.padding[0] + ki * p.dilation[0];
          if (h < 0 || h >= H) continue;
          for (let kj = 0; kj < p.kernel[1]; kj++) {
            const w = oj * p.stride[1] - p.padding[1] + kj * p.dilation[1];
            if (w < 0 || w >= W) continue;
            const v = X[base + h * W + w]!;
            if (v > best || v !== v || bestI < 0) {
              best = v;
              bestI = h * W + w;
              if (v !== v) break;
            }
          }
          if (best !== best) break;
        }
        y[o] = best;
        ix[o++] = bestI;
      }
    }
  }
  writeOut(out, y);
  writeOut(indices, ix);
}

export function cpuMaxPool2dBackward(dy: View, indices: View, dx: View): void {
  const [N, C, H, W] = dims(dx);
  const [, , oH, oW] = dims(dy);
  const DY = gatherView(dy);
  const IX = gatherView(indices);
  const result = new Float32Array(N * C * H * W);
  for (let plane = 0; plane < N * C; plane++) {
    for (let q = 0; q < oH * oW; q++) {
      const i = IX[plane * oH * oW + q]!;
      if (i >= 0) result[plane * H * W + i]! += DY[plane * oH * oW + q]!;
    }
  }
  writeOut(dx, result);
}

/** PyTorch's avg-pool window: clipped bounds and the divisor for output (oi, oj). */
function avgWindow(oi: number, oj: number, H: number, W: number, p: Pool2dParams): [number, number, number, number, number] {
  let h0 = oi * p.stride[0] - p.padding[0];
  let w0 = oj * p.stride[1] - p.padding[1];
  let h1 = Math.min(h0 + p.kernel[0], H + p.padding[0]);
  let w1 = Math.min(w0 + p.kernel[1], W + p.padding[1]);
  const poolSize = (h1 - h0) * (w1 - w0);
  h0 = Math.max(h0, 0);
  w0 = Math.max(w0, 0);
  h1 = Math.min(h1, H);
  w1 = Math.min(w1, W);
  const divisor = p.divisorOverride ?? (p.countIncludePad ? poolSize : (h1 - h0) * (w1 - w0));
  return [h0, h1, w0, w1, divisor];
}

export function cpuAvgPool2d(x: View, out: View, p: Pool2dParams): void {
  const [N, C, H, W] = dims(x);
  const [, , oH, oW] = dims(out);
  const X = gatherView(x);
  const y = new Float32Array(N * C * oH * oW);
  let o = 0;
  for (let plane = 0; plane < N * C; plane++) {
    for (let oi = 0; oi < oH; oi++) {
      for (let oj = 0; oj < oW; oj++) {
        const [h0, h1, w0, w1, div] = avgWindow(oi, oj, H, W, p);
        let s = 0;
        for (let h = h0; h < h1; h++) for (let w = w0; w < w1; w++) s += X[plane * H * W + h * W + w]!;
        y[o++] = s / div;
      }
    }
  }
  writeOut(out, y);
}

export function cpuAvgPool2dBackward(dy: View, dx: View, p: Pool2dParams): void {
  const [N, C, H, W] = dims(dx);
  const [, , oH, oW] = dims(dy);
  const DY = gatherView(dy);
  const result = new Float32Array(N * C * H * W);
  for (let plane = 0; plane < N * C; plane++) {
    for (let oi = 0; oi < oH; oi++) {
      for (let oj = 0; oj < oW; oj++) {
        const [h0, h1, w0, w1, div] = avgWindow(oi, oj, H, W, p);
        const g = DY[(plane * oH + oi) * oW + oj]! / div;
        for (let h = h0; h < h1; h++) for (let w = w0; w < w1; w++) result[plane * H * W + h * W + w]! += g;
      }
    }
  }
  writeOut(dx, result);
}

/** PyTorch's adaptive pooling bins: [floor(i*In/Out), ceil((i+1)*In/Out)). */
export function adaptiveBin(i: number, inSize: number, outSize: number): [number, number] {
  return [Math.floor((i * inSize) / outSize), Math.ceil(((i + 1) * inSize) / outSize)];
}

export function cpuAdaptiveAvgPool2d(x: View, out: View): void {
  const [N, C, H, W] = dims(x);
  const [, , oH, oW] = dims(out);
  const X = gatherView(x);
  const y = new Float32Array(N * C * oH * oW);
  let o = 0;
  for (let plane = 0; plane < N * C; plane++) {
    for (let oi = 0; oi < oH; oi++) {
      const [h0, h1] = adaptiveBin(oi, H, oH);
      for (let oj = 0; oj < oW; oj++) {
        const [w0, w1] = adaptiveBin(oj, W, oW);
        let s = 0;
        for (let h = h0; h < h1; h++) for (let w = w0; w < w1; w++) s += X[plane * H * W + h * W + w]!;
        y[o++] = s / ((h1 - h0) * (w1 - w0));
      }
    }
  }
  writeOut(out, y);
}

export function cpuAdaptiveAvgPool2dBackward(dy: View, dx: View): void {
  const [N, C, H, W] = dims(dx);
  const [, , oH, oW] = dims(dy);
  const DY = gatherView(dy);
  const result = new Float32Array(N * C * H * W);
  for (let plane = 0; plane < N * C; plane++) {
    for (let oi = 0; oi < oH; oi++) {
      const [h0, h1] = adaptiveBin(oi, H, oH);
      for (let oj = 0; oj < oW; oj++) {
        const [w0, w1] = adaptiveBin(oj, W, oW);
        const g = DY[(plane * oH + oi) * oW + oj]! / ((h1 - h0) * (w1 - w0));
        for (let h = h0; h < h1; h++) for (let w = w0; w < w1; w++) result[plane * H * W + h * W + w]! += g;
      }
    }
  }
  writeOut(dx, result);
}
