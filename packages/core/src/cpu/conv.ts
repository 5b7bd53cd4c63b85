import type { Conv2dParams, MatmulEpilogue, View } from '../backend.js';
import { arr, gatherView, offsetsOf, reader } from './strided.js';
import { gemmAcc } from './gemm.js';

/**
 * Reference conv2d by im2col + GEMM per image and group. cols has shape
 * [C/g * kH * kW, oH * oW]; weights [O/g, C/g * kH * kW].
 */
interface Geometry {
  N: number; C: number; H: number; W: number;
  O: number; kH: number; kW: number; oH: number; oW: number;
  cg: number; og: number; K: number; P: number;
}

function geometry(xShape: readonly number[], wShape: readonly number[], yShape: readonly number[], p: Conv2dParams): Geometry {
  const [N, C, H, W] = xShape as [number, number, number, number];
  const [O, cg, kH, kW] = wShape as [number, number, number, number];
  const [, , oH, oW] = yShape as [number, number, number, number];
  return { N, C, H, W, O, kH, kW, oH, oW, cg, og: O / p.groups, K: cg * kH * kW, P: oH * oW };
}

function im2col(x: Float32Array, n: number, group: number, g: Geometry, p: Conv2dParams, cols: Float32Array): void {
  const { C, H, W, kH, kW, oH, oW, cg, P } = g;
  for (let c = 0; c < cg; c++) {
    const plane = (n * C + group * cg + c) * H * W;
    for (let ki = 0; ki < kH; ki++) {
      for (let kj = 0; kj < kW; kj++) {
        const row = ((c * kH + ki) * kW + kj) * P;
        for (let oi = 0; oi < oH; oi++) {
          const h = oi * p.stride[0] - p.padding[0] + ki * p.dilation[0];
          for (let oj = 0; oj < oW; oj++) {
            const w = oj * p.stride[1] - p.padding[1] + kj * p.dilation[1];
            cols[row + oi * oW + oj] = h >= 0 && h < H && w >= 0 && w < W ? x[plane + h * W + w]! : 0;
          }
        }
      }
    }
  }
}

function col2im(cols: Float32Array, n: number, group: number, g: Geometry, p: Conv2dParams, dx: Float32Array): void {
  const { C, H, W, kH, kW, oH, oW, cg, P } = g;
  for (let c = 0; c < cg; c++) {
    const plane = (n * C + group * cg + c) * H * W;
    for (let ki = 0; ki < kH; ki++) {
      for (let kj = 0; kj < kW; kj++) {
        const row = ((c * kH + ki) * kW + kj) * P;
        for (let oi = 0; oi < oH; oi++) {
          const h = oi * p.stride[0] - p.padding[0] + ki * p.dilation[0];
          if (h < 0 || h >= H) continue;
          for (let oj = 0; oj < oW; oj++) {
            const w = oj * p.stride[1] - p.padding[1] + kj * p.dilation[1];
            if (w >= 0 && w < W) dx[plane + h * W + w]! += cols[row + oi * oW + oj]!;
          }
        }
      }
    }
  }
}

function writeOut(out: View, data: ArrayLike<number>): void {
  const dst = arr(out);
  const offs = offsetsOf(out.shape, out.strides, out.offset);
  for (let i = 0; i < offs.length; i++) dst[offs[i]!] = data[i]!;
}

export function cpuConv2d(x: View, w: View, out: View, p: Conv2dParams, ep?: Omit<MatmulEpilogue, 'biasAxis' | 'alpha'>): void {
  const g = geometry(x.shape, w.shape, out.shape, p);
  const X = gatherView(x) as Float32Array;
  const Wt = gatherView(w) as Float32Array;
  const bias = ep?.bias ? gatherView(ep.bias) : null;
  const y = new Float32Array(g.N * g.O * g.P);
  const cols = new Float32Array(g.K * g.P);
  const acc = new Float64Array(g.og * g.P);
  for (let n = 0; n < g.N; n++) {
    for (let grp = 0; grp < p.groups; grp++) {
      im2col(X, n, grp, g, p, cols);
      acc.fill(0);
      gemmAcc(Wt, grp * g.og * g.K, cols, 0, acc, g.og, g.K, g.P);
      const base = (n * g.O + grp * g.og) * g.P;
      for (let i = 0; i < acc.length; i++) y[base + i] = acc[i]! + (bias ? bias[grp * g.og + Math.floor(i / g.P)]! : 0);
    }
  }
  if (ep?.residual) {
    const r = reader(ep.residual, out.shape);
    for (let i = 0; i < y.length; i++) y[i]! += r(i);
  }
  if (ep?.relu) for (let i = 0; i < y.length; i++) if (!(y[i]! > 0) && y[i] === y[i]) y[i] = 0;
  writeOut(out, y);
}

export function cpuConv2dBackwardInput(dy: View, w: View, dx: View, p: Conv2dParams): void {
  const g = geometry(dx.shape, w.shape, dy.shape, p);
  const DY = gatherView(dy) as Float32Array;
  const Wt = gatherView(w) as Float32Array;
  const result = new Float32Array(g.N * g.C * g.H * g.W);
  const colsAcc = new Float64Array(g.K * g.P);
  const cols = new Float32Array(g.K * g.P);
  // W^T per group: [K, og]
  const wT = new Float32Array(g.K * g.og);
  for (let grp = 0; grp < p.groups; grp++) {
    for (let o = 0; o < g.og; o++) for (let k = 0; k < g.K; k++) wT[k * g.og + o] = Wt[(grp * g.og + o) * g.K + k]!;
    for (let n = 0; n < g.N; n++) {
      colsAcc.fill(0);
      gemmAcc(wT, 0, DY, (n * g.O + grp * g.og) * g.P, colsAcc, g.K, g.og, g.P);
      for (let i = 0; i < cols.length; i++) cols[i] = colsAcc[i]!;
      col2im(cols, n, grp, g, p, result);
    }
  }
  writeOut(dx, result);
}

export function cpuConv2dBackwardWeight(x: View, dy: View, dw: View, p: Conv2dParams): void {
  const g = geometry(x.shape, dw.shape, dy.shape, p);
  const X = gatherView(x) as Float32Array;
  const DY = gatherView(dy) as Float32Array;
  const cols = new Float32Array(g.K * g.P);
  const colsT = new Float32Array(g.P * g.K);
  const acc = new Float64Array(g.O * g.K);
  const part = new Float64Array(g.og * g.K);
  for (let grp = 0; grp < p.groups; grp++) {
    for (let n = 0; n < g.N; n++) {
      im2col(X, n, grp, g, p, cols);
      for (let k = 0; k < g.K; k++) for (let q = 0; q < g.P; q++) colsT[q * g.K + k] = cols[k * g.P + q]!;
      part.fill(0);
      gemmAcc(DY, (n * g.O + grp * g.og) * g.P, colsT, 0, part, g.og, g.P, g.K);
      const base = grp * g.og * g.K;
      for (let i = 0; i < part.length; i++) acc[base + i]! += part[i]!;
    }
  }
  writeOut(dw, acc);
}
