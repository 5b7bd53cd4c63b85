import type { MatmulEpilogue, View } from '../backend.js';
import { arr, gatherView, offsetsOf, reader } from './strided.js';
import { gemmAcc } from './gemm.js';

/**
 * out[b] = epilogue(a[b] @ b[b]) on contiguous copies, i-k-j loop order so
 * the inner loop streams rows of b and out.
 */
export function cpuMatmul(a: View, b: View, out: View, ep?: MatmulEpilogue): void {
  const [B, M, K] = a.shape as [number, number, number];
  const N = b.shape[2]!;
  const A = gatherView(a);
  const Bm = gatherView(b);
  const C = arr(out);
  const alpha = ep?.alpha ?? 1;
  const bias = ep?.bias ? gatherView(ep.bias) : null;
  const residual = ep?.residual ? reader(ep.residual, [B, M, N]) : null;
  const outOffs = offsetsOf(out.shape, out.strides, out.offset);
  const acc = new Float64Array(M * N);
  for (let bi = 0; bi < B; bi++) {
    acc.fill(0);
    gemmAcc(A as Float32Array, bi * M * K, Bm as Float32Array, bi * K * N, acc, M, K, N);
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        const flat = (bi * M + i) * N + j;
        let v = alpha * acc[i * N + j]!;
        if (bias) v += bias[ep!.biasAxis === 'm' ? i : j]!;
        if (residual) v += residual(flat);
        if (ep?.relu && !(v > 0)) v = v !== v ? v : 0;
        C[outOffs[flat]!] = v;
      }
    }
  }
}
