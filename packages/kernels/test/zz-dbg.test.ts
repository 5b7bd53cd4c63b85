import { it } from 'vitest';
import { backend, cpu, expectSame, free, outPair, pair } from './helpers.js';
it('dbg', async () => {
  const be = backend();
  const SH = [[1, 1, 1, 1], [1, 5, 7, 3], [2, 33, 17, 9], [3, 8, 16, 12], [1, 70, 64, 72], [1, 1, 300, 1], [1, 65, 8, 130]];
  for (const [B, M, K, N] of SH) for (const layout of ['nn', 'tt', 'offset', 'broadcastA']) {
    const ops: any = {
      nn: () => [pair('float32', [B, M, K]), pair('float32', [B, K, N])],
      tt: () => [pair('float32', [B, M, K], { strides: [M * K, 1, M], size: B * M * K }), pair('float32', [B, K, N], { strides: [K * N, 1, K], size: B * K * N })],
      offset: () => [pair('float32', [B, M, K], { offset: 3 }), pair('float32', [B, K, N], { offset: 4 })],
      broadcastA: () => [pair('float32', [B, M, K], { strides: [0, K, 1], size: M * K }), pair('float32', [B, K, N])],
    };
    const [a, b] = ops[layout]();
    const o = outPair('float32', [B, M, N]);
    be.matmul(a.g, b.g, o.g); cpu.matmul(a.c, b.c, o.c);
    try { await expectSame(o, 1e-4); } catch (e) { console.log('FAIL', B, M, K, N, layout, (e as Error).message); }
    free(a, b, o);
  }
});
