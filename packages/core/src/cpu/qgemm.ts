import type { MatmulEpilogue, QuantEpilogue, View } from '../backend.js';
import { arr, gatherView, offsetsOf } from './strided.js';

/** Round half to even, as nearbyint under the default rounding mode. */
function nearbyint(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * The integer GEMM of {@link QuantEpilogue}, the reference every int8
 * kernel must equal: int32 accumulation of (a - aZeroPoint) * b, then a
 * float32 epilogue or the requantizing one.
 */
export function cpuQuantMatmul(a: View, b: View, out: View, ep: MatmulEpilogue & { quant: QuantEpilogue }): void {
  const [B, M, K] = a.shape as [number, number, number];
  const N = b.shape[2]!;
  const q = ep.quant;
  const A = gatherView(a);
  const Bm = gatherView(b);
  const za = gatherView(q.aZeroPoint)[0]!;
  const scale = gatherView(q.scale);
  const bias = q.bias ? gatherView(q.bias) : null;
  const C = arr(out);
  const outOffs = offsetsOf(out.shape, out.strides, out.offset);
  const quantized = out.dtype !== 'float32';
  const [qmin, qmax] = out.dtype === 'uint8' ? [0, 255] : [-128, 127];
  const zo = q.outZeroPoint ?? 0;
  const lo = ep.relu ? Math.max(qmin, zo) : qmin;
  for (let bi = 0; bi < B; bi++) {
    for (let i = 0; i < M; i++) {
      const aRow = (bi * M + i) * K;
      for (let j = 0; j < N; j++) {
        let v = 0;
        for (let k = 0; k < K; k++) v += (A[aRow + k]! - za) * Bm[(bi * K + k) * N + j]!;
        v |= 0;
        const flat = (bi * M + i) * N + j;
        if (quantized) {
          const t = q.bias?.dtype === 'float32'
            ? Math.fround(Math.fround(Math.fround(v) * scale[j]!) + bias![j]!)
            : Math.fround(Math.fround((v + (bias ? bias[j]! : 0)) | 0) * scale[j]!);
          C[outOffs[flat]!] = Math.min(qmax, Math.max(lo, nearbyint(t) + zo));
        } else {
          // Product and bias rounded separately (no fma), as PyTorch's kernels.
          let y = Math.fround(Math.fround(v) * scale[j]!);
          if (bias) y = Math.fround(y + bias[j]!);
          if (ep.relu && y < 0) y = 0;
          C[outOffs[flat]!] = y;
        }
      }
    }
  }
}
