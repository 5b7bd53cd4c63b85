import type { Conv2dParams } from '@kiln/core';
import { expect, it } from 'vitest';
import { backend, cpu, describeStrategies, expectSame, free, gpu, gpuDescribe, outPair, pair } from './helpers.js';
import { convOverride } from '../src/ops/conv.js';
import { chooseTuning, convBlock, gemmBlock } from '../src/tuning.js';

interface Case {
  x: [number, number, number, number];
  o: number;
  k: [number, number];
  p: Conv2dParams;
}

const P = (stride: number[], padding: number[], dilation: number[], groups: number): Conv2dParams => ({
  stride: stride as [number, number], padding: padding as [number, number], dilation: dilation as [number, number], groups,
});

const CASES: Case[] = [
  { x: [2, 3, 7, 6], o: 5, k: [3, 3], p: P([1, 1], [1, 1], [1, 1], 1) },
  { x: [1, 4, 9, 9], o: 6, k: [3, 2], p: P([2, 3], [1, 0], [1, 1], 2) },
  { x: [2, 6, 8, 7], o: 6, k: [3, 3], p: P([1, 1], [2, 2], [2, 2], 6) },
  { x: [1, 3, 11, 10], o: 8, k: [7, 7], p: P([2, 2], [3, 3], [1, 1], 1) },
  { x: [2, 8, 5, 5], o: 12, k: [1, 1], p: P([1, 1], [0, 0], [1, 1], 1) },
  { x: [1, 5, 6, 6], o: 7, k: [1, 1], p: P([2, 2], [0, 0], [1, 1], 1) },
  { x: [1, 1, 1, 1], o: 1, k: [1, 1], p: P([1, 1], [0, 0], [1, 1], 1) },
  { x: [3, 2, 4, 5], o: 3, k: [2, 2], p: P([1, 2], [0, 1], [1, 1], 1) },
  { x: [2, 3, 9, 8], o: 5, k: [3, 3], p: P([2, 3], [2, 1], [2, 2], 1) },
  // Small maps: stride 2 over an odd batch (dx with images folded into columns), and the
  // single-tap GEMMs (ops/conv-tap.ts): 3x3 pad 1 on 1x1, 1x1 stride 2 on 2x2 (dx zero elsewhere).
  { x: [3, 4, 4, 4], o: 6, k: [3, 3], p: P([2, 2], [1, 1], [1, 1], 1) },
  { x: [3, 4, 1, 1], o: 6, k: [3, 3], p: P([1, 1], [1, 1], [1, 1], 1) },
  { x: [3, 5, 2, 2], o: 4, k: [1, 1], p: P([2, 2], [0, 0], [1, 1], 1) },
];

const outSize = (n: number, k: number, s: number, p: number, d: number) => Math.floor((n + 2 * p - d * (k - 1) - 1) / s) + 1;

function shapes(c: Case) {
  const [N, C, H, W] = c.x;
  const OH = outSize(H, c.k[0], c.p.stride[0], c.p.padding[0], c.p.dilation[0]);
  const OW = outSize(W, c.k[1], c.p.stride[1], c.p.padding[1], c.p.dilation[1]);
  return { w: [c.o, C / c.p.groups, ...c.k], y: [N, c.o, OH, OW] };
}

// Every geometry on the kernels of both strategy classes: on lavapipe the
// 'cpu-like' pass takes im2col + the subgroup GEMM and the subgroup-shared
// backward kernels, the 'gpu' pass the direct forward and the per-element
// backward kernels a real GPU gets.
describeStrategies('conv2d', () => {
  it('forward over groups, stride, padding, dilation and 1x1 (GEMM path), with and without the epilogue', async () => {
    for (const c of CASES) {
      const s = shapes(c);
      const x = pair('float32', c.x);
      const w = pair('float32', s.w);
      const bias = pair('float32', [c.o]);
      const res = pair('float32', s.y);
      for (const ep of [undefined, { bias: true, residual: true, relu: true }, { relu: true }]) {
        const o = outPair('float32', s.y);
        const e = (k: 'g' | 'c') => ep && { bias: ep.bias ? bias[k] : undefined, residual: ep.residual ? res[k] : undefined, relu: ep.relu };
        backend().conv2d(x.g, w.g, o.g, c.p, e('g') as never);
        cpu.conv2d(x.c, w.c, o.c, c.p, e('c') as never);
        await expectSame(o, 1e-4);
        free(o);
      }
      free(x, w, bias, res);
    }
  }, 240_000); // cold shader compiles on lavapipe are slow

  it('forward reads strided (channels-last) inputs and writes strided outputs', async () => {
    const c = CASES[0];
    const [N, C, H, W] = c.x;
    const s = shapes(c);
    const x = pair('float32', c.x, { strides: [H * W * C, 1, W * C, C], size: N * C * H * W });
    const w = pair('float32', s.w, { offset: 3 });
    const o = outPair('float32', s.y, { strides: [s.y[1] * s.y[2] * s.y[3], 1, s.y[3] * s.y[1], s.y[1]] });
    backend().conv2d(x.g, w.g, o.g, c.p);
    cpu.conv2d(x.c, w.c, o.c, c.p);
    await expectSame(o, 1e-4);
    const c1 = CASES[4];
    const s1 = shapes(c1);
    const x1 = pair('float32', c1.x, { strides: [1, 2, 16, 80], size: 400 });
    const w1 = pair('float32', s1.w);
    const o1 = outPair('float32', s1.y);
    backend().conv2d(x1.g, w1.g, o1.g, c1.p);
    cpu.conv2d(x1.c, w1.c, o1.c, c1.p);
    await expectSame(o1, 1e-4);
  });

  it('backward input and backward weight over the same geometries', async () => {
    for (const c of CASES) {
      const s = shapes(c);
      const x = pair('float32', c.x);
      const w = pair('float32', s.w);
      const dy = pair('float32', s.y, { offset: 1 });
      const dx = outPair('float32', c.x);
      backend().conv2dBackwardInput(dy.g, w.g, dx.g, c.p);
      cpu.conv2dBackwardInput(dy.c, w.c, dx.c, c.p);
      await expectSame(dx, 1e-4);
      const dw = outPair('float32', s.w);
      backend().conv2dBackwardWeight(x.g, dy.g, dw.g, c.p);
      cpu.conv2dBackwardWeight(x.c, dy.c, dw.c, c.p);
      await expectSame(dw, 1e-4);
      free(x, w, dy, dx, dw);
    }
  });

  it('empty batches dispatch nothing', async () => {
    const x = pair('float32', [0, 3, 5, 5]);
    const w = pair('float32', [4, 3, 3, 3]);
    const o = outPair('float32', [0, 4, 3, 3]);
    backend().conv2d(x.g, w.g, o.g, P([1, 1], [0, 0], [1, 1], 1));
    const dw = outPair('float32', [4, 3, 3, 3]);
    backend().conv2dBackwardWeight(x.g, o.g, dw.g, P([1, 1], [0, 0], [1, 1], 1));
    cpu.conv2dBackwardWeight(x.c, o.c, dw.c, P([1, 1], [0, 0], [1, 1], 1));
    await expectSame(dw);
  });
});

/** The subgroup size the CPU-like rows would use on this adapter (0: none fixed). */
const S = gpu ? chooseTuning(gpu.info, 'cpu-like').subgroupSize : 0;

gpuDescribe('conv2d subgroup kernels', () => {
  if (!S) {
    // Nothing to run them on here; what can be checked is that no strategy picks them.
    it('without fixed-size subgroups no strategy picks the subgroup-shared kernels', () => {
      for (const strategy of ['cpu-like', 'gpu'] as const) {
        const t = chooseTuning(backend().info, strategy);
        expect(t.subgroupSize).toBe(0);
        expect(gemmBlock(t).shareA).toBe(0);
        for (const [rows, groups] of [[64, 1], [3, 1], [6, 2]]) expect(convBlock(t, rows, groups).shareW).toBe(0);
      }
    });
    return;
  }
  it('subgroup-shared kernels (forward, backward input, backward weight) match at TM = S and 2S, TN = 3, on every ungrouped geometry', async () => {
    try {
      for (const tm of [S, 2 * S]) {
        // At 2S the input gradient also runs its columns over chunks of 2 images (the grid-limit path).
        Object.assign(convOverride, { tm, tn: 3, wg: [S, 1], shareW: S, im2col: false, dxImages: tm === S ? undefined : 2 });
        for (const c of CASES.filter((k) => k.p.groups === 1)) {
          const s = shapes(c);
          const x = pair('float32', c.x);
          const w = pair('float32', s.w);
          const bias = pair('float32', [c.o]);
          const res = pair('float32', s.y);
          const dy = pair('float32', s.y, { offset: 1 });
          const o = outPair('float32', s.y);
          backend().conv2d(x.g, w.g, o.g, c.p, { bias: bias.g, residual: res.g, relu: true });
          cpu.conv2d(x.c, w.c, o.c, c.p, { bias: bias.c, residual: res.c, relu: true });
          await expectSame(o, 1e-4);
          const dx = outPair('float32', c.x);
          backend().conv2dBackwardInput(dy.g, w.g, dx.g, c.p);
          cpu.conv2dBackwardInput(dy.c, w.c, dx.c, c.p);
          await expectSame(dx, 1e-4);
          const dw = outPair('float32', s.w);
          backend().conv2dBackwardWeight(x.g, dy.g, dw.g, c.p);
          cpu.conv2dBackwardWeight(x.c, dy.c, dw.c, c.p);
          await expectSame(dw, 1e-4);
          free(x, w, bias, res, dy, o, dx, dw);
        }
      }
    } finally {
      for (const k of Object.keys(convOverride)) delete (convOverride as Record<string, unknown>)[k];
    }
  }, 240_000);
});
