import type { Conv2dParams } from '@kiln/core';
import { expect, it } from 'vitest';
import { backend, cpu, describeStrategies, expectSame, free, outPair, pair } from './helpers.js';
import { convOverride } from '../src/ops/conv.js';

const P = (stride: number, padding: number): Conv2dParams => ({ stride: [stride, stride], padding: [padding, padding], dilation: [1, 1], groups: 1 });
const outSize = (n: number, k: number, s: number, p: number) => Math.floor((n + 2 * p - k) / s) + 1;

// The weight gradient as im2col + one GEMM over the batch's pixels (ops/conv-weight.ts):
// N = 1, 2 and 3, N*P % 4 != 0 (zero-padded rows) and == 0, stride 2 with padding, the 7x7
// stem, a 1x1, a strided dy, and the small maps the table sends there (2x2 and 1x1 outputs).
const CASES: { x: [number, number, number, number]; o: number; k: number; p: Conv2dParams; dyOffset?: number }[] = [
  { x: [1, 3, 12, 12], o: 8, k: 7, p: P(2, 3) },
  { x: [2, 5, 7, 7], o: 6, k: 3, p: P(1, 1) },
  { x: [3, 4, 9, 8], o: 5, k: 3, p: P(2, 1), dyOffset: 1 },
  { x: [2, 6, 8, 8], o: 4, k: 1, p: P(2, 0) },
  { x: [3, 8, 2, 2], o: 6, k: 3, p: P(1, 1) },
  { x: [5, 8, 2, 2], o: 6, k: 3, p: P(2, 1), dyOffset: 1 },
];

describeStrategies('conv2d weight gradient via im2col + GEMM', () => {
  it('matches the CPU reference (tolerance 1e-4: float32 sums of at most N*P = 144 products of O(1) values, in another order)', async () => {
    try {
      convOverride.weightGemm = true;
      for (const c of CASES) {
        const [N, C, H, W] = c.x;
        const y = [N, c.o, outSize(H, c.k, c.p.stride[0], c.p.padding[0]), outSize(W, c.k, c.p.stride[1], c.p.padding[1])];
        const x = pair('float32', c.x);
        const dy = pair('float32', y, { offset: c.dyOffset ?? 0 });
        const dw = outPair('float32', [c.o, C, c.k, c.k]);
        const kernels = await backend().profile(() => backend().conv2dBackwardWeight(x.g, dy.g, dw.g, c.p));
        // Where the adapter has timestamps, the profile also proves the route ran: one im2col, one dy copy, one GEMM.
        if (kernels.length) expect(kernels.map((k) => `${k.kernel}x${k.count}`).sort()).toEqual(['copyx1', 'im2colx1', 'matmulx1']);
        cpu.conv2dBackwardWeight(x.c, dy.c, dw.c, c.p);
        await expectSame(dw, 1e-4);
        free(x, dy, dw);
      }
    } finally {
      delete convOverride.weightGemm;
    }
  }, 240_000);
});
