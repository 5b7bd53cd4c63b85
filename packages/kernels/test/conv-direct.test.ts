import type { Conv2dParams } from '@kiln/core';
import { expect, it } from 'vitest';
import { backend, cpu, describeStrategies, expectSame, free, outPair, pair } from './helpers.js';
import { convOverride } from '../src/ops/conv.js';
import { direct4Eligible } from '../src/ops/conv-direct.js';
import { direct4Vectors } from '../src/wgsl/conv-direct.js';

const P = (stride: number, padding: number): Conv2dParams => ({ stride: [stride, stride], padding: [padding, padding], dilation: [1, 1], groups: 1 });

// The vec4 direct kernel (wgsl/conv-direct.ts) on the geometries it is for, small: the 7x7
// stride-2 stem (phase 1), stride-2 3x3 (phase 3), strided 1x1 (phase 0), padded 1x1 (phase 3), padding 2
// (phase 2), a row width that leaves a partial pixel tile (OW = 5), 9 output channels (a
// partial channel block), N = 2 (the batch stride).
const CASES: { x: [number, number, number, number]; o: number; k: number; p: Conv2dParams }[] = [
  { x: [2, 3, 16, 16], o: 9, k: 7, p: P(2, 3) },
  { x: [1, 5, 12, 8], o: 17, k: 3, p: P(2, 1) },
  { x: [2, 6, 8, 12], o: 9, k: 1, p: P(2, 0) },
  { x: [1, 4, 6, 4], o: 3, k: 1, p: P(1, 1) },
  { x: [1, 2, 9, 8], o: 5, k: 5, p: P(1, 2) },
  { x: [1, 3, 7, 20], o: 4, k: 3, p: P(4, 1) },
];

const outSize = (n: number, k: number, s: number, p: number) => Math.floor((n + 2 * p - k) / s) + 1;

describeStrategies('conv2d vec4 direct kernel', () => {
  it('matches the CPU reference (tolerance 1e-4: float32 sums of at most 147 products of O(1) values, in another order) with and without the fused epilogue', async () => {
    try {
      // The route forced alone: not im2col, Winograd (or the 1x1 GEMM, which no case here takes).
      Object.assign(convOverride, { vec4: true, im2col: false, winograd: 0 });
      for (const c of CASES) {
        const [N, C, H, W] = c.x;
        const y = [N, c.o, outSize(H, c.k, c.p.stride[0], c.p.padding[0]), outSize(W, c.k, c.p.stride[1], c.p.padding[1])];
        expect(direct4Eligible({ shape: c.x }, [c.o, C, c.k, c.k], c.p)).toBe(true);
        const x = pair('float32', c.x);
        const w = pair('float32', [c.o, C, c.k, c.k]);
        const bias = pair('float32', [c.o]);
        const res = pair('float32', y);
        for (const ep of [false, true]) {
          const o = outPair('float32', y);
          const kernels = await backend().profile(() => backend().conv2d(x.g, w.g, o.g, c.p, ep ? { bias: bias.g, residual: res.g, relu: true } : {}));
          // Where the adapter has timestamps, the profile also proves which kernel ran.
          if (kernels.length) expect(kernels.map((k) => k.kernel)).toEqual(['conv2d.direct4']);
          cpu.conv2d(x.c, w.c, o.c, c.p, ep ? { bias: bias.c, residual: res.c, relu: true } : {});
          await expectSame(o, 1e-4);
          free(o);
        }
        free(x, w, bias, res);
      }
    } finally {
      for (const k of ['vec4', 'im2col', 'winograd'] as const) delete convOverride[k];
    }
  }, 240_000); // cold shader compiles on lavapipe are slow

  it('leaves inputs whose rows are not vec4-aligned to the scalar kernel, with the same result', async () => {
    const p = P(2, 3);
    // W = 10: rows are not vec4-aligned; an offset of 1 breaks alignment of an aligned shape.
    expect(direct4Eligible({ shape: [1, 3, 11, 10] }, [8, 3, 7, 7], p)).toBe(false);
    expect(direct4Eligible({ shape: [1, 3, 8, 8], strides: [192, 64, 8, 1], offset: 1 }, [8, 3, 7, 7], p)).toBe(false);
    expect(direct4Eligible({ shape: [1, 3, 8, 8] }, [8, 3, 7, 7], { ...p, groups: 3 })).toBe(false);
    try {
      convOverride.vec4 = true;
      const x = pair('float32', [1, 3, 8, 8], { offset: 1 });
      const w = pair('float32', [8, 3, 7, 7]);
      const o = outPair('float32', [1, 8, 4, 4]);
      backend().conv2d(x.g, w.g, o.g, p);
      cpu.conv2d(x.c, w.c, o.c, p);
      await expectSame(o, 1e-4);
      free(x, w, o);
    } finally {
      delete convOverride.vec4;
    }
  });

  it('loads the stem tile (4 pixels, 7 taps, stride 2, phase 1) as 4 vec4s', () => {
    expect(direct4Vectors({ tm: 16, tn: 4, shareW: 8, kw: 7, sw: 2, phase: 1 })).toBe(4);
  });
});
