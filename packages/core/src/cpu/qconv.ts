import type { Conv2dParams, MatmulEpilogue, QuantEpilogue, View } from '../backend.js';
import { arr, gatherView, offsetsOf } from './strided.js';

/** Round half to even, as nearbyint under the default rounding mode. */
function nearbyint(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * The integer conv2d of a `quant` epilogue (groups 1), the reference the
 * fused int8 conv kernel must equal: v = Σ_{c,i,j} (x[n, c, ih, iw] - za) *
 * w[o, c, i, j] in int32 with padded taps contributing 0 (the input zero
 * point), then the requantizing epilogue of cpuQuantMatmul (int32 or float32
 * bias, per-channel scale, output zero point, ReLU, clamp). Any layouts.
 */
export function cpuQuantConv2d(x: View, w: View, out: View, p: Conv2dParams, ep: Omit<MatmulEpilogue, 'biasAxis' | 'alpha'> & { quant: QuantEpilogue }): void {
  const [N, C, H, W] = x.shape as [number, number, number, number];
  const [O, , kH, kW] = w.shape as [number, number, number, number];
  const [, , oH, oW] = out.shape as [number, number, number, number];
  const q = ep.quant;
  const X = gatherView(x);
  const Wt = gatherView(w);
  const za = gatherView(q.aZeroPoint)[0]!;
  const scale = gatherView(q.scale);
  const bias = q.bias ? gatherView(q.bias) : null;
  const Y = arr(out);
  const outOffs = offsetsOf(out.shape, out.strides, out.offset);
  const [qmin, qmax] = out.dtype === 'uint8' ? [0, 255] : [-128, 127];
  const zo = q.outZeroPoint ?? 0;
  const lo = ep.relu ? Math.max(qmin, zo) : qmin;
  const [sh, sw] = p.stride;
  const [ph, pw] = p.padding;
  const [dh, dw] = p.dilation;
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < O; o++) {
      for (let oi = 0; oi < oH; oi++) {
        for (let oj = 0; oj < oW; oj++) {
          let v = 0;
          for (let c = 0; c < C; c++) {
            for (let i = 0; i < kH; i++) {
              const h = oi * sh - ph + i * dh;
              if (h < 0 || h >= H) continue;
              for (let j = 0; j < kW; j++) {
                const ww = oj * sw - pw + j * dw;
                if (ww < 0 || ww >= W) continue;
                v += (X[((n * C + c) * H + h) * W + ww]! - za) * Wt[((o * C + c) * kH + i) * kW + j]!;
              }
            }
          }
          v |= 0;
          const t = q.bias?.dtype === 'float32'
            ? Math.fround(Math.fround(Math.fround(v) * scale[o]!) + bias![o]!)
            : Math.fround(Math.fround((v + (bias ? bias[o]! : 0)) | 0) * scale[o]!);
          Y[outOffs[((n * O + o) * oH + oi) * oW + oj]!] = Math.min(qmax, Math.max(lo, nearbyint(t) + zo));
        }
      }
    }
  }
}
