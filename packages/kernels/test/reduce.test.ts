import type { DType, ReduceOp } from '@kiln/core';
import { it } from 'vitest';
import { backend, cpu, expectSame, free, gpuDescribe, hostArray, outPair, pair, type Layout } from './helpers.js';

const OPS: ReduceOp[] = ['sum', 'mean', 'max', 'min', 'argmax', 'argmin', 'prod'];

function outDtype(op: ReduceOp, x: DType): DType {
  return op === 'argmax' || op === 'argmin' ? 'int32' : op === 'mean' ? 'float32' : x;
}

/** [shape, layout, reduceRank]: small (thread per output) and large (workgroup per output) reductions. */
const CASES: [number[], Layout, number][] = [
  [[3, 5], {}, 1],
  [[3, 5], { strides: [1, 3], size: 15 }, 1],
  [[2, 3, 4], { offset: 5 }, 2],
  [[4, 1, 7], { strides: [7, 0, 1], size: 28 }, 2],
  [[1000], { offset: 1 }, 1],
  [[3, 700], { strides: [1, 3], size: 2100 }, 1],
  [[2, 300, 2], {}, 2],
  [[5, 3], {}, 2],
  [[4, 6], {}, 0],
];

gpuDescribe('reduce', () => {
  it('every op over the last dims of strided views, small and large (tree) reductions', async () => {
    for (const [shape, layout, r] of CASES) {
      const x = pair('float32', shape, layout, (n) => hostArray('float32', n, (i) => ((i * 37) % 101) / 50 - 1 + (i % 7 === 3 ? 0.25 : 0)));
      const outShape = shape.slice(0, shape.length - r);
      for (const op of OPS) {
        if (op === 'prod' && shape.reduce((a, b) => a * b, 1) > 100) continue;
        const o = outPair(outDtype(op, 'float32'), outShape);
        backend().reduce(op, x.g, r, o.g);
        cpu.reduce(op, x.c, r, o.c);
        await expectSame(o, 1e-4);
        free(o);
      }
      free(x);
    }
  });

  it('argmax/argmin take the first occurrence and max/min/arg* propagate NaN', async () => {
    const vals = [1, 3, 3, -2, -2, 3, NaN, 5, NaN, 0, 1, 1, 1, 1, 1, 1];
    for (const n of [8, 16, 600]) {
      const x = pair('float32', [2, n], {}, (sz) => hostArray('float32', sz, (i) => (i < n ? vals[i % 6] : vals[i % 16])));
      for (const op of OPS) {
        const o = outPair(outDtype(op, 'float32'), [2]);
        backend().reduce(op, x.g, 1, o.g);
        cpu.reduce(op, x.c, 1, o.c);
        await expectSame(o, 1e-4);
      }
    }
  });

  it('integer sums and extremes stay integer', async () => {
    for (const dtype of ['int32', 'int8', 'uint8'] as DType[]) {
      const x = pair(dtype, [3, 400]);
      for (const op of ['sum', 'max', 'min', 'argmax', 'argmin', 'mean'] as ReduceOp[]) {
        const o = outPair(op === 'sum' ? 'int32' : outDtype(op, dtype), [3]);
        backend().reduce(op, x.g, 1, o.g);
        cpu.reduce(op, x.c, 1, o.c);
        await expectSame(o, 1e-5);
      }
    }
  });

  it('reduces empty blocks to the identity and skips empty outputs', async () => {
    const x = pair('float32', [3, 0]);
    for (const op of ['sum', 'prod', 'mean'] as ReduceOp[]) {
      const o = outPair('float32', [3]);
      backend().reduce(op, x.g, 1, o.g);
      cpu.reduce(op, x.c, 1, o.c);
      await expectSame(o);
    }
    const e = pair('float32', [0, 4]);
    const o = outPair('float32', [0]);
    backend().reduce('sum', e.g, 1, o.g);
    await expectSame(o);
  });
});
