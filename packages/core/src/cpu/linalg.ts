import type { MatmulEpilogue, View } from '../backend.js';
import { arr, gatherView, offsetsOf, reader } from './strided.js';

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
  const row = new Float64Array(N);
  for (let bi = 0; bi < B; bi++) {
    for (let i = 0; i < M; i++) {
      row.fill(0);
      const aRow = (bi * M + i) * K;
      for (let k = 0; k < K; k++) {
        const av = A[aRow + k]!;
        if (av === 0) continue;
        const bRow = (bi * K + k) * N;
        for (let j = 0; j < N; j++) row[j]! += av * Bm[bRow + j]!;
      }
      for (let j = 0; j < N; j++) {
        const flat = (bi * M + i) * N + j;
        let v = alpha * row[j]!;
        if (bias) v += bias[ep!.biasAxis === 'm' ? i : j]!;
        if (residual) v += residual(flat);
        if (ep?.relu && !(v > 0)) v = v !== v ? v : 0;
        C[outOffs[flat]!] = v;
      }
    }
  }
}
