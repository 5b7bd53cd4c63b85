import type { Pool2dParams } from '@kiln/core';
import { it } from 'vitest';
import { backend, cpu, expectSame, free, gpuDescribe, hostArray, outPair, pair } from './helpers.js';

const P = (k: number[], s: number[], p: number[], d: number[], ceilMode: boolean, extra: Partial<Pool2dParams> = {}): Pool2dParams => ({
  kernel: k as [number, number], stride: s as [number, number], padding: p as [number, number], dilation: d as [number, number], ceilMode, ...extra,
});

function outSize(n: number, k: number, s: number, p: number, d: number, ceil: boolean): number {
  const span = n + 2 * p - d * (k - 1) - 1;
  let o = (ceil ? Math.ceil(span / s) : Math.floor(span / s)) + 1;
  if (ceil && (o - 1) * s >= n + p) o--;
  return o;
}

const CASES: [number[], Pool2dParams][] = [
  [[2, 3, 7, 6], P([3, 3], [2, 2], [1, 1], [1, 1], false)],
  [[1, 2, 8, 9], P([2, 3], [2, 2], [0, 1], [1, 1], true)],
  [[1, 2, 9, 9], P([3, 3], [1, 1], [1, 1], [2, 2], false)],
  [[2, 1, 5, 5], P([2, 2], [3, 3], [1, 1], [1, 1], true)],
  [[1, 1, 1, 1], P([1, 1], [1, 1], [0, 0], [1, 1], false)],
];

function yShape(x: number[], p: Pool2dParams): number[] {
  return [x[0], x[1],
    outSize(x[2], p.kernel[0], p.stride[0], p.padding[0], p.dilation[0], p.ceilMode),
    outSize(x[3], p.kernel[1], p.stride[1], p.padding[1], p.dilation[1], p.ceilMode)];
}

gpuDescribe('pooling', () => {
  it('maxPool2d values, indices and backward (overlapping windows, dilation, ceilMode; channels-last and contiguous x)', async () => {
    // Contiguous views let the backward kernel merge (n, c); channels-last ones do not (wgsl/pool.ts).
    for (const [xs, p, channelsLast] of CASES.flatMap(([xs, p]) => [[xs, p, true], [xs, p, false]] as const)) {
      const ys = yShape(xs, p);
      // Repeated values exercise first-occurrence tie breaking.
      const layout = channelsLast ? { strides: [xs[1] * xs[2] * xs[3], 1, xs[3] * xs[1], xs[1]] } : {};
      const x = pair('float32', xs, layout, (n) => hostArray('float32', n, (i) => (i * 7) % 5));
      const y = outPair('float32', ys);
      const idx = outPair('int32', ys);
      backend().maxPool2d(x.g, y.g, idx.g, p);
      cpu.maxPool2d(x.c, y.c, idx.c, p);
      await expectSame(y);
      await expectSame(idx);
      const dy = pair('float32', ys);
      const dx = outPair('float32', xs);
      backend().maxPool2dBackward(dy.g, idx.g, dx.g, p);
      cpu.maxPool2dBackward(dy.c, idx.c, dx.c);
      await expectSame(dx, 1e-5);
      free(x, y, idx, dy, dx);
    }
  });

  it('avgPool2d and backward with countIncludePad, ceilMode and divisorOverride', async () => {
    for (const [xs, base] of CASES) {
      if (base.dilation[0] !== 1) continue;
      for (const extra of [{ countIncludePad: true }, { countIncludePad: false }, { divisorOverride: 3 }]) {
        const p = { ...base, ...extra };
        const ys = yShape(xs, p);
        const x = pair('float32', xs, { offset: 2 });
        const y = outPair('float32', ys);
        backend().avgPool2d(x.g, y.g, p);
        cpu.avgPool2d(x.c, y.c, p);
        await expectSame(y);
        const dy = pair('float32', ys);
        const dx = outPair('float32', xs);
        backend().avgPool2dBackward(dy.g, dx.g, p);
        cpu.avgPool2dBackward(dy.c, dx.c, p);
        await expectSame(dx);
        free(x, y, dy, dx);
      }
    }
  });

  it('adaptiveAvgPool2d and backward, shrinking and growing', async () => {
    for (const [xs, ys] of [[[2, 3, 7, 5], [2, 3, 3, 2]], [[1, 2, 4, 4], [1, 2, 1, 1]], [[1, 1, 3, 2], [1, 1, 5, 4]], [[1, 2, 8, 8], [1, 2, 8, 8]]]) {
      const x = pair('float32', xs, { strides: [xs[1] * xs[2] * xs[3], 1, xs[3] * xs[1], xs[1]] });
      const y = outPair('float32', ys);
      backend().adaptiveAvgPool2d(x.g, y.g);
      cpu.adaptiveAvgPool2d(x.c, y.c);
      await expectSame(y);
      const dy = pair('float32', ys);
      const dx = outPair('float32', xs);
      backend().adaptiveAvgPool2dBackward(dy.g, dx.g);
      cpu.adaptiveAvgPool2dBackward(dy.c, dx.c);
      await expectSame(dx);
      free(x, y, dy, dx);
    }
  });
});
