import { it } from 'vitest';
import { backend, cpu, expectSame, free, gpuDescribe, hostArray, outPair, pair } from './helpers.js';
import { normOverride } from '../src/ops/norm.js';

// [N, C, S] shapes: S over one 256-thread run of the plane grid (wrapping in the
// reductions), S under it (layer4's 7x7), and N past the 65535-per-dimension grid
// limit (BatchNorm1d-like, S = 1), which takes the flat-grid element kernels.
// Also planes that do not divide the 256-thread run (S = 7, 3, 1 with N*S past 256:
// the reductions' per-thread (n, s) step wraps across planes), and layer4's 1x1 at batch 8.
const SHAPES: [number, number, number][] = [[2, 3, 300], [8, 5, 49], [3, 2, 256], [70000, 2, 1], [40, 3, 7], [100, 2, 3], [300, 2, 1], [8, 4, 1]];

gpuDescribe('batch norm primitives', () => {
  it('stats, affine, backwardReduce and backwardInput match the CPU reference (plane and flat grids)', async () => {
    for (const shape of SHAPES) {
      const [, C] = shape;
      const x = pair('float32', shape);
      const dy = pair('float32', shape);
      const mean = outPair('float32', [C]);
      const vari = outPair('float32', [C]);
      backend().batchNormStats(x.g, mean.g, vari.g);
      cpu.batchNormStats(x.c, mean.c, vari.c);
      await expectSame(mean, 1e-5);
      await expectSame(vari, 1e-5);
      // Per-channel coefficients from host data, so every kernel below reads the same inputs on both backends.
      const invStd = pair('float32', [C], {}, (n) => hostArray('float32', n, (i) => 0.5 + i * 0.25));
      const scale = pair('float32', [C], {}, (n) => hostArray('float32', n, (i) => 1.5 - i * 0.5));
      const shift = pair('float32', [C], {}, (n) => hostArray('float32', n, (i) => i - 0.75));
      const m = pair('float32', [C], {}, (n) => hostArray('float32', n, (i) => 0.1 * i));
      const y = outPair('float32', shape);
      backend().channelAffine(x.g, scale.g, shift.g, y.g);
      cpu.channelAffine(x.c, scale.c, shift.c, y.c);
      await expectSame(y, 1e-6);
      const sumDy = outPair('float32', [C]);
      const sumDyX = outPair('float32', [C]);
      backend().batchNormBackwardReduce(dy.g, x.g, m.g, invStd.g, sumDy.g, sumDyX.g);
      cpu.batchNormBackwardReduce(dy.c, x.c, m.c, invStd.c, sumDy.c, sumDyX.c);
      await expectSame(sumDy, 1e-5);
      await expectSame(sumDyX, 1e-5);
      const sd = pair('float32', [C], {}, (n) => hostArray('float32', n, (i) => 3 - i));
      const sdx = pair('float32', [C], {}, (n) => hostArray('float32', n, (i) => 0.5 * i - 1));
      const dx = outPair('float32', shape);
      backend().batchNormBackwardInput(dy.g, x.g, m.g, invStd.g, scale.g, sd.g, sdx.g, dx.g);
      cpu.batchNormBackwardInput(dy.c, x.c, m.c, invStd.c, scale.c, sd.c, sdx.c, dx.c);
      await expectSame(dx, 1e-5);
      free(x, dy, mean, vari, invStd, scale, shift, m, y, sumDy, sumDyX, sd, sdx, dx);
    }
  });

  // Channels of at most 256 elements take the serial reductions by default; both forms
  // must give the CPU reference's sums on them (and serial on a channel past 256 too).
  it('the serial (thread per channel) and tree reductions both match the CPU reference', async () => {
    try {
      for (const reduce of ['serial', 'tree'] as const) {
        normOverride.reduce = reduce;
        for (const shape of [[8, 4, 1], [32, 3, 4], [5, 70, 7], [2, 3, 128], [256, 2, 1], [3, 2, 300]] as [number, number, number][]) {
          const [, C] = shape;
          const x = pair('float32', shape);
          const dy = pair('float32', shape);
          const mean = outPair('float32', [C]);
          const vari = outPair('float32', [C]);
          backend().batchNormStats(x.g, mean.g, vari.g);
          cpu.batchNormStats(x.c, mean.c, vari.c);
          await expectSame(mean, 1e-5);
          await expectSame(vari, 1e-5);
          const invStd = pair('float32', [C], {}, (n) => hostArray('float32', n, (i) => 0.5 + (i % 5) * 0.25));
          const m = pair('float32', [C], {}, (n) => hostArray('float32', n, (i) => 0.1 * (i % 7)));
          const sumDy = outPair('float32', [C]);
          const sumDyX = outPair('float32', [C]);
          backend().batchNormBackwardReduce(dy.g, x.g, m.g, invStd.g, sumDy.g, sumDyX.g);
          cpu.batchNormBackwardReduce(dy.c, x.c, m.c, invStd.c, sumDy.c, sumDyX.c);
          await expectSame(sumDy, 1e-5);
          await expectSame(sumDyX, 1e-5);
          free(x, dy, mean, vari, invStd, m, sumDy, sumDyX);
        }
      }
    } finally {
      delete normOverride.reduce;
    }
  });
});
