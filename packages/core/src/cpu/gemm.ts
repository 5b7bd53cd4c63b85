/**
 * c[M, N] += a[M, K] @ b[K, N], row-major with base offsets, accumulating in
 * float64. The reference backend's hot loop: two rows of c are updated from
 * four rows of b per pass (k unrolled by 4), so every load of b feeds two
 * multiply-adds and every load/store of c four. Plain enough for V8 to
 * compile to tight code.
 */
export function gemmAcc(a: Float32Array, aOff: number, b: Float32Array, bOff: number, c: Float64Array, M: number, K: number, N: number): void {
  const k4 = K - (K % 4);
  let i = 0;
  for (; i + 1 < M; i += 2) {
    const r0 = aOff + i * K;
    const r1 = r0 + K;
    const c0 = i * N;
    const c1 = c0 + N;
    let k = 0;
    for (; k < k4; k += 4) {
      const x0 = a[r0 + k]!, x1 = a[r0 + k + 1]!, x2 = a[r0 + k + 2]!, x3 = a[r0 + k + 3]!;
      const y0 = a[r1 + k]!, y1 = a[r1 + k + 1]!, y2 = a[r1 + k + 2]!, y3 = a[r1 + k + 3]!;
      const b0 = bOff + k * N;
      const b1 = b0 + N;
      const b2 = b1 + N;
      const b3 = b2 + N;
      for (let j = 0; j < N; j++) {
        const v0 = b[b0 + j]!, v1 = b[b1 + j]!, v2 = b[b2 + j]!, v3 = b[b3 + j]!;
        c[c0 + j] = c[c0 + j]! + x0 * v0 + x1 * v1 + x2 * v2 + x3 * v3;
        c[c1 + j] = c[c1 + j]! + y0 * v0 + y1 * v1 + y2 * v2 + y3 * v3;
      }
    }
    for (; k < K; k++) {
      const x = a[r0 + k]!;
      const y = a[r1 + k]!;
      const bRow = bOff + k * N;
      for (let j = 0; j < N; j++) {
        const v = b[bRow + j]!;
        c[c0 + j] = c[c0 + j]! + x * v;
        c[c1 + j] = c[c1 + j]! + y * v;
      }
    }
  }
  for (; i < M; i++) {
    const r0 = aOff + i * K;
    const c0 = i * N;
    for (let k = 0; k < K; k++) {
      const x = a[r0 + k]!;
      if (x === 0) continue;
      const bRow = bOff + k * N;
      for (let j = 0; j < N; j++) c[c0 + j] = c[c0 + j]! + x * b[bRow + j]!;
    }
  }
}
