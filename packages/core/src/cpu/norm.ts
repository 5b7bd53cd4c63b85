import type { View } from '../backend.js';
import { arr } from './strided.js';

// Batch-norm primitives on contiguous [N, C, S] views (see Backend): the
// reference keeps PyTorch's two-pass statistics (mean first, then squared
// deviations) so large means do not cancel.

function dims(v: View): [number, number, number] {
  return v.shape as [number, number, number];
}

export function cpuBatchNormStats(x: View, mean: View, variance: View): void {
  const [N, C, S] = dims(x);
  const X = arr(x);
  const M = N * S;
  for (let c = 0; c < C; c++) {
    let sum = 0;
    for (let n = 0; n < N; n++) {
      const base = x.offset + (n * C + c) * S;
      for (let s = 0; s < S; s++) sum += X[base + s]!;
    }
    const mu = sum / M;
    let sq = 0;
    for (let n = 0; n < N; n++) {
      const base = x.offset + (n * C + c) * S;
      for (let s = 0; s < S; s++) {
        const d = X[base + s]! - mu;
        sq += d * d;
      }
    }
    arr(mean)[mean.offset + c * (mean.strides[0] ?? 1)] = mu;
    arr(variance)[variance.offset + c * (variance.strides[0] ?? 1)] = sq / M;
  }
}

/** Reads element c of a 1-D view. */
function at(v: View, c: number): number {
  return arr(v)[v.offset + c * (v.strides[0] ?? 1)]!;
}

export function cpuChannelAffine(x: View, scale: View, shift: View, out: View): void {
  const [N, C, S] = dims(x);
  const X = arr(x);
  const O = arr(out);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      const a = at(scale, c);
      const b = at(shift, c);
      const xi = x.offset + (n * C + c) * S;
      const oi = out.offset + (n * C + c) * S;
      for (let s = 0; s < S; s++) O[oi + s] = X[xi + s]! * a + b;
    }
  }
}

export function cpuBatchNormBackwardReduce(dy: View, x: View, mean: View, invStd: View, sumDy: View, sumDyXhat: View): void {
  const [N, C, S] = dims(x);
  const X = arr(x);
  const G = arr(dy);
  for (let c = 0; c < C; c++) {
    const mu = at(mean, c);
    const is = at(invStd, c);
    let sg = 0;
    let sgx = 0;
    for (let n = 0; n < N; n++) {
      const xi = x.offset + (n * C + c) * S;
      const gi = dy.offset + (n * C + c) * S;
      for (let s = 0; s < S; s++) {
        const g = G[gi + s]!;
        sg += g;
        sgx += g * (X[xi + s]! - mu) * is;
      }
    }
    arr(sumDy)[sumDy.offset + c] = sg;
    arr(sumDyXhat)[sumDyXhat.offset + c] = sgx;
  }
}

export function cpuBatchNormBackwardInput(dy: View, x: View, mean: View, invStd: View, scale: View, sumDy: View, sumDyXhat: View, dx: View): void {
  const [N, C, S] = dims(x);
  const M = N * S;
  const X = arr(x);
  const G = arr(dy);
  const D = arr(dx);
  for (let c = 0; c < C; c++) {
    const mu = at(mean, c);
    const is = at(invStd, c);
    const k = at(scale, c);
    const mg = at(sumDy, c) / M;
    const mgx = at(sumDyXhat, c) / M;
    for (let n = 0; n < N; n++) {
      const base = (n * C + c) * S;
      for (let s = 0; s < S; s++) {
        const xhat = (X[x.offset + base + s]! - mu) * is;
        D[dx.offset + base + s] = k * (G[dy.offset + base + s]! - mg - xhat * mgx);
      }
    }
  }
}
