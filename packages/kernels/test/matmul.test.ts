import { expect, it } from 'vitest';
import { backend, cpu, expectSame, free, gpuDescribe, outPair, pair, type Pair } from './helpers.js';
import type { GemmStrategy } from '../src/tuning.js';
import { gemmOverride } from '../src/ops/matmul.js';

/** Views a, b of [B, M, K] and [B, K, N] in several layouts. */
function operands(B: number, M: number, K: number, N: number, layout: 'nn' | 'tt' | 'offset' | 'broadcastA'): [Pair, Pair] {
  switch (layout) {
    case 'nn': return [pair('float32', [B, M, K]), pair('float32', [B, K, N])];
    case 'tt': return [
      pair('float32', [B, M, K], { strides: [M * K, 1, M], size: B * M * K }),
      pair('float32', [B, K, N], { strides: [K * N, 1, K], size: B * K * N }),
    ];
    case 'offset': return [pair('float32', [B, M, K], { offset: 3 }), pair('float32', [B, K, N], { offset: 4 })];
    case 'broadcastA': return [pair('float32', [B, M, K], { strides: [0, K, 1], size: M * K }), pair('float32', [B, K, N])];
  }
}

const SHAPES: [number, number, number, number][] = [
  [1, 1, 1, 1], [1, 5, 7, 3], [2, 33, 17, 9], [3, 8, 16, 12], [1, 70, 64, 72], [2, 4, 0, 5], [1, 1, 300, 1], [1, 65, 8, 130],
];

/** Cold shader compiles (no Mesa cache) on a busy 2-core lavapipe machine take tens of seconds. */
const SLOW = 240_000;

function check(strategy: GemmStrategy): void {
  it(`${strategy}: matches the reference over odd shapes and layouts`, async () => {
    const be = backend();
    const ctx = (be as unknown as { ctx: { gemm: GemmStrategy } }).ctx;
    const saved = ctx.gemm;
    ctx.gemm = strategy;
    try {
      for (const [B, M, K, N] of SHAPES) {
        for (const layout of ['nn', 'tt', 'offset', 'broadcastA'] as const) {
          const [a, b] = operands(B, M, K, N, layout);
          const o = outPair('float32', [B, M, N]);
          be.matmul(a.g, b.g, o.g);
          cpu.matmul(a.c, b.c, o.c);
          await expectSame(o, 1e-4);
          free(a, b, o);
        }
      }
    } finally {
      ctx.gemm = saved;
    }
  }, SLOW);

  it(`${strategy}: applies the epilogue (bias per n or m, residual, relu, alpha) and strided outputs`, async () => {
    const be = backend();
    const ctx = (be as unknown as { ctx: { gemm: GemmStrategy } }).ctx;
    const saved = ctx.gemm;
    ctx.gemm = strategy;
    try {
      const [B, M, K, N] = [2, 13, 20, 24];
      const [a, b] = operands(B, M, K, N, 'nn');
      const biasN = pair('float32', [N]);
      const biasM = pair('float32', [M], { strides: [2], size: 2 * M });
      const res = pair('float32', [B, M, N], { strides: [0, N, 1], size: M * N });
      // Each epilogue is its own pipeline; cold LLVM compiles on lavapipe are slow, so the
      // (CPU-unused) tiled strategy checks only the combined one.
      const all = [{ biasN: true }, { biasM: true, relu: true }, { res: true, alpha: 0.5 }, { biasN: true, res: true, relu: true, alpha: -2 }];
      for (const e of strategy === 'tiled' ? all.slice(1, 2).concat(all.slice(3)) : all) {
        const o = outPair('float32', [B, M, N], { strides: [1, 2 * B * N, 2 * B], size: 2 * B * M * N });
        const ep = (p: 'g' | 'c') => ({
          bias: e.biasN ? biasN[p] : e.biasM ? biasM[p] : undefined,
          biasAxis: (e.biasM ? 'm' : 'n') as 'm' | 'n',
          residual: e.res ? res[p] : undefined,
          relu: e.relu,
          alpha: e.alpha,
        });
        be.matmul(a.g, b.g, o.g, ep('g') as never);
        cpu.matmul(a.c, b.c, o.c, ep('c') as never);
        await expectSame(o, 1e-4);
      }
    } finally {
      ctx.gemm = saved;
    }
  }, SLOW);
}

gpuDescribe('matmul', () => {
  check('register');
  check('tiled');

  it('register blocks other than the table default (subgroup-shared A, interleaved columns, row-major grid) match too', async () => {
    const be = backend();
    const sg = be.tuning.subgroupSize;
    const blocks: (typeof gemmOverride)[] = [
      { tm: 4, tn: 8, wg: [16, 4], cols: 'block', grid: 'nm', shareA: 0 },
      { tm: 2, tn: 4, wg: [8, 2], cols: 'interleave', grid: 'mn', shareA: 0, vecB: false },
    ];
    if (sg) blocks.push({ tm: sg, tn: 8, wg: [2 * sg, 1], cols: 'interleave', grid: 'nm', shareA: sg });
    try {
      for (const block of blocks) {
        Object.assign(gemmOverride, block);
        for (const [B, M, K, N] of [[2, 33, 20, 9], [1, 70, 64, 72], [1, 3, 8, 12]]) {
          for (const layout of ['nn', 'tt', 'offset'] as const) {
            const [a, b] = operands(B, M, K, N, layout);
            const o = outPair('float32', [B, M, N]);
            be.matmul(a.g, b.g, o.g);
            cpu.matmul(a.c, b.c, o.c);
            await expectSame(o, 1e-4);
            free(a, b, o);
          }
        }
        for (const k of Object.keys(gemmOverride)) delete (gemmOverride as Record<string, unknown>)[k];
      }
    } finally {
      for (const k of Object.keys(gemmOverride)) delete (gemmOverride as Record<string, unknown>)[k];
    }
  }, SLOW);

  it('accumulates a residual that is the output itself (in place)', async () => {
    const [a, b] = operands(1, 9, 8, 12, 'nn');
    const o = pair('float32', [1, 9, 12]);
    backend().matmul(a.g, b.g, o.g, { residual: o.g });
    cpu.matmul(a.c, b.c, o.c, { residual: o.c });
    await expectSame(o, 1e-4);
  });

  it('does not recompile for new shapes', async () => {
    const be = backend();
    const [a, b] = operands(1, 16, 16, 16, 'nn');
    const o = outPair('float32', [1, 16, 16]);
    be.matmul(a.g, b.g, o.g);
    await be.sync();
    const before = be.runtime.pipelineCount;
    const [a2, b2] = operands(2, 24, 32, 40, 'nn');
    const o2 = outPair('float32', [2, 24, 40]);
    be.matmul(a2.g, b2.g, o2.g);
    await be.sync();
    expect(be.runtime.pipelineCount).toBe(before);
  });
});
