// Winograd F(2x2, 3x3) and F(4x4, 3x3) against the CPU backend's direct
// loops: forward with every epilogue, input gradient, odd sizes (partial edge
// tiles), padding 0/1/2, strided views; and the filter-transform cache (hit,
// re-transform after an in-place write, freed with its weight).
import type { Conv2dParams } from '@kiln/core';
import { afterEach, expect, it } from 'vitest';
import { backend, cpu, expectSame, free, gpuDescribe, outPair, pair } from './helpers.js';
import { convOverride } from '../src/ops/conv.js';
import { cachedFilterCount } from '../src/ops/winograd.js';

const P = (padding: number): Conv2dParams => ({ stride: [1, 1], padding: [padding, padding], dilation: [1, 1], groups: 1 });

/** [x shape, output channels, padding]; sizes not divisible by 2 or 4 leave partial tiles. */
const CASES: [[number, number, number, number], number, number][] = [
  [[2, 3, 7, 6], 5, 1],
  [[1, 8, 9, 9], 4, 0],
  [[1, 4, 5, 11], 8, 2],
  [[3, 16, 4, 4], 12, 1],
  [[1, 1, 1, 1], 2, 1],
];

// Transformed-domain arithmetic rounds differently from the direct sum:
// the transforms scale terms by up to 8 (F(4x4)'s A^T) before they cancel,
// so a result loses a few ulps of its largest partial sum. Inputs here are
// U(-2, 2) with at most 16 * 9 terms, so outputs reach ~20: relative to
// (1 + |want|), F(2x2) stays within 5e-6 and F(4x4) within 5e-5 (3e-5 seen).
const TOL: Record<2 | 4, number> = { 2: 5e-6, 4: 5e-5 };

const ctx = () => (backend() as unknown as { ctx: Parameters<typeof cachedFilterCount>[0] }).ctx;

afterEach(() => {
  delete convOverride.winograd;
});

gpuDescribe('winograd conv2d', () => {
  for (const m of [2, 4] as const) {
    it(`F(${m}x${m}, 3x3) forward matches, with and without the fused epilogue`, async () => {
      convOverride.winograd = m;
      for (const [xs, o, pad] of CASES) {
        const [N, C, H, W] = xs;
        const y = [N, o, H + 2 * pad - 2, W + 2 * pad - 2];
        const x = pair('float32', xs);
        const w = pair('float32', [o, C, 3, 3]);
        const bias = pair('float32', [o]);
        const res = pair('float32', y);
        for (const ep of [undefined, { bias: true, residual: true, relu: true }, { relu: true }]) {
          const out = outPair('float32', y);
          const e = (k: 'g' | 'c') => ep && { bias: ep.bias ? bias[k] : undefined, residual: ep.residual ? res[k] : undefined, relu: ep.relu };
          backend().conv2d(x.g, w.g, out.g, P(pad), e('g') as never);
          cpu.conv2d(x.c, w.c, out.c, P(pad), e('c') as never);
          await expectSame(out, TOL[m]);
          free(out);
        }
        free(x, w, bias, res);
      }
    }, 240_000);

    it(`F(${m}x${m}, 3x3) input gradient matches (the flipped, transposed filter)`, async () => {
      convOverride.winograd = m;
      for (const [xs, o, pad] of CASES) {
        const [N, C, H, W] = xs;
        const y = [N, o, H + 2 * pad - 2, W + 2 * pad - 2];
        const w = pair('float32', [o, C, 3, 3], { offset: 2 });
        const dy = pair('float32', y, { offset: 1 });
        const dx = outPair('float32', xs);
        backend().conv2dBackwardInput(dy.g, w.g, dx.g, P(pad));
        cpu.conv2dBackwardInput(dy.c, w.c, dx.c, P(pad));
        await expectSame(dx, TOL[m]);
        free(w, dy, dx);
      }
    }, 240_000);
  }

  it('reads strided (channels-last) inputs and writes strided outputs', async () => {
    convOverride.winograd = 4;
    const [N, C, H, W] = [2, 5, 6, 7];
    const x = pair('float32', [N, C, H, W], { strides: [H * W * C, 1, W * C, C], size: N * C * H * W });
    const w = pair('float32', [3, C, 3, 3], { strides: [1, 27, 9, 3], size: 3 * C * 9 });
    const out = outPair('float32', [N, 3, H, W], { strides: [3 * H * W, 1, W * 3, 3] });
    backend().conv2d(x.g, w.g, out.g, P(1));
    cpu.conv2d(x.c, w.c, out.c, P(1));
    await expectSame(out, TOL[4]);
    free(x, w, out);
  });

  it('caches the filter transform per weight version and frees it with the weight', async () => {
    convOverride.winograd = 2;
    const before = cachedFilterCount(ctx());
    const x = pair('float32', [1, 4, 6, 6]);
    const w = pair('float32', [4, 4, 3, 3]);
    const run = async () => {
      const out = outPair('float32', [1, 4, 6, 6]);
      backend().conv2d(x.g, w.g, out.g, P(1));
      cpu.conv2d(x.c, w.c, out.c, P(1));
      await expectSame(out, TOL[2]);
      free(out);
    };
    await run();
    const profiled = await backend().profile(() => backend().conv2d(x.g, w.g, outPair('float32', [1, 4, 6, 6]).g, P(1)));
    expect(profiled.map((k) => k.kernel)).toContain('winograd.output');
    expect(profiled.map((k) => k.kernel)).not.toContain('winograd.filter');
    expect(cachedFilterCount(ctx())).toBe(before + 1);
    // An in-place write (what an optimizer step does) must re-transform.
    const fresh = Float32Array.from({ length: 4 * 4 * 9 }, (_, i) => Math.sin(i));
    backend().write(w.g.storage, fresh);
    cpu.write(w.c.storage as never, fresh);
    await run();
    // Written by a kernel (not an upload): the version moves too.
    backend().unary('neg', w.g, w.g);
    cpu.unary('neg', w.c, w.c);
    await run();
    free(w);
    expect(cachedFilterCount(ctx())).toBe(before);
    free(x);
  });
});
