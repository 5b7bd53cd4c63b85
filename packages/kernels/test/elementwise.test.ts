import type { BinaryOp, DType, UnaryOp } from '@kiln/core';
import { expect, it } from 'vitest';
import { backend, cpu, expectSame, free, gpuDescribe, hostArray, outPair, pair, randomData, type Layout, type Pair } from './helpers.js';

const DTYPES: DType[] = ['float32', 'int32', 'int8', 'uint8', 'bool'];

/** Input layouts of a [3, 1, 5] operand: each exercises one indexing path. */
const LAYOUTS: Record<string, { shape: number[]; layout: Layout }> = {
  contiguous: { shape: [3, 1, 5], layout: {} },
  offset: { shape: [3, 1, 5], layout: { offset: 3 } },
  transposed: { shape: [3, 1, 5], layout: { strides: [1, 7, 3], size: 15 } },
  broadcast: { shape: [3, 1, 5], layout: { strides: [0, 0, 1], offset: 1, size: 6 } },
  scalarBroadcast: { shape: [3, 1, 5], layout: { strides: [0, 0, 0], offset: 2, size: 3 } },
};

const SPECIAL = [0, -0, 1, -1, 0.5, -0.5, 1.5, 2.5, -2.5, 3.7, -3.7, 100, -100, Infinity, -Infinity, NaN, 1e-30, 88.8, -88.8, 7];

gpuDescribe('fill and copy', () => {
  it('fills every dtype, including strided and empty outputs', async () => {
    for (const dtype of DTYPES) {
      for (const value of [0, 1, -3.7, 300]) {
        const o = outPair(dtype, [2, 3], { strides: [1, 4], size: 12, offset: 1 });
        backend().fill(o.g, value);
        cpu.fill(o.c, value);
        await expectSame(o);
        free(o);
      }
    }
    const empty = outPair('float32', [0, 3]);
    backend().fill(empty.g, 1);
    await expectSame(empty);
  });

  it('copies between every pair of dtypes from strided sources (casting like PyTorch)', async () => {
    for (const from of DTYPES) {
      const x = pair(from, [4, 3], { strides: [1, 5], size: 20 }, (n) =>
        from === 'float32' ? hostArray(from, n, (i) => SPECIAL[i % SPECIAL.length] * (i % 3 === 0 ? 1 : 97.3)) : randomData(from, n));
      for (const to of DTYPES) {
        const o = outPair(to, [4, 3]);
        backend().copy(x.g, o.g);
        cpu.copy(x.c, o.c);
        await expectSame(o);
        free(o);
      }
      free(x);
    }
  });

  it('copies into a strided output with a rank-0 broadcast source', async () => {
    const x = pair('float32', [], {});
    const o = outPair('float32', [3, 4], { strides: [8, 2], size: 24 });
    backend().copy({ ...x.g, shape: [3, 4], strides: [0, 0] }, o.g);
    cpu.copy({ ...x.c, shape: [3, 4], strides: [0, 0] }, o.c);
    await expectSame(o);
  });
});

const FLOAT_UNARY: UnaryOp[] = ['neg', 'abs', 'exp', 'log', 'sqrt', 'rsqrt', 'sin', 'cos', 'tanh', 'sigmoid', 'relu', 'sign', 'floor', 'ceil', 'round', 'square', 'reciprocal', 'logicalNot'];
const INT_UNARY: UnaryOp[] = ['neg', 'abs', 'relu', 'sign', 'floor', 'ceil', 'round', 'square', 'logicalNot'];

gpuDescribe('unary', () => {
  it('computes every float op on special values through a strided view', async () => {
    const x = pair('float32', [4, 5], { strides: [1, 4], size: 20 }, (n) => hostArray('float32', n, (i) => SPECIAL[i % SPECIAL.length]));
    for (const op of FLOAT_UNARY) {
      if (op === 'logicalNot') continue;
      const o = outPair('float32', [4, 5]);
      backend().unary(op, x.g, o.g);
      cpu.unary(op, x.c, o.c);
      await expectSame(o, 1e-5);
      free(o);
    }
  });

  it('logicalNot treats NaN as true, as PyTorch (torch.logical_not(nan) == False)', async () => {
    const x = pair('float32', [5], {}, () => new Float32Array([0, -0, NaN, 1, -Infinity]));
    const o = outPair('bool', [5]);
    backend().unary('logicalNot', x.g, o.g);
    expect([...(await backend().read(o.g.storage, 0, 5))]).toEqual([1, 1, 0, 0, 0]);
  });

  it('clamps with min only, max only and both, on floats and ints', async () => {
    for (const dtype of ['float32', 'int32'] as DType[]) {
      const x = pair(dtype, [7, 3]);
      for (const params of [{ min: -0.5 }, { max: 1 }, { min: -1, max: 1 }]) {
        const p = dtype === 'int32' ? { min: params.min && Math.round(params.min), max: params.max } : params;
        const o = outPair(dtype, [7, 3]);
        backend().unary('clamp', x.g, o.g, p);
        cpu.unary('clamp', x.c, o.c, p);
        await expectSame(o);
        free(o);
      }
    }
  });

  it('computes integer ops in integer arithmetic and float ops of ints into float outputs', async () => {
    for (const dtype of ['int32', 'int8', 'uint8'] as DType[]) {
      const x = pair(dtype, [3, 1, 5], { offset: 2 });
      for (const op of INT_UNARY) {
        const o = outPair(op === 'logicalNot' ? 'bool' : dtype, [3, 1, 5]);
        backend().unary(op, x.g, o.g);
        cpu.unary(op, x.c, o.c);
        await expectSame(o);
        free(o);
      }
      for (const op of ['exp', 'sqrt', 'sigmoid'] as UnaryOp[]) {
        const o = outPair('float32', [3, 1, 5]);
        backend().unary(op, x.g, o.g);
        cpu.unary(op, x.c, o.c);
        await expectSame(o, 1e-5);
        free(o);
      }
    }
  });

  it('works in place (out shares the input storage)', async () => {
    const x = pair('float32', [5, 6]);
    backend().unary('exp', x.g, x.g);
    cpu.unary('exp', x.c, x.c);
    await expectSame(x, 2e-6);
  });
});

const ARITH: BinaryOp[] = ['add', 'sub', 'mul', 'maximum', 'minimum'];
const COMPARE: BinaryOp[] = ['eq', 'ne', 'lt', 'le', 'gt', 'ge', 'logicalAnd', 'logicalOr'];

function outDtype(op: BinaryOp, dtype: DType): DType {
  if (COMPARE.includes(op)) return 'bool';
  if (op === 'div') return 'float32';
  return dtype;
}

gpuDescribe('binary', () => {
  it('every op on float32 and int32 over contiguous, offset, transposed and broadcast views', async () => {
    for (const dtype of ['float32', 'int32'] as DType[]) {
      const views = Object.fromEntries(Object.entries(LAYOUTS).map(([k, v]) => [k, pair(dtype, v.shape, v.layout)])) as Record<string, Pair>;
      const ops: BinaryOp[] = [...ARITH, ...COMPARE, 'div', ...(dtype === 'float32' ? (['pow'] as BinaryOp[]) : [])];
      for (const op of ops) {
        for (const [an, bn] of [['contiguous', 'offset'], ['transposed', 'broadcast'], ['scalarBroadcast', 'transposed']]) {
          const o = outPair(outDtype(op, dtype), [3, 1, 5]);
          backend().binary(op, views[an].g, views[bn].g, o.g);
          cpu.binary(op, views[an].c, views[bn].c, o.c);
          await expectSame(o, 2e-6);
          free(o);
        }
      }
    }
  });

  it('takes scalar operands on either side, and mixed int/float inputs', async () => {
    const f = pair('float32', [2, 7]);
    const i = pair('int32', [2, 7]);
    const cases: [BinaryOp, Pair | number, Pair | number, DType][] = [
      ['add', f, 2.5, 'float32'], ['sub', 3, f, 'float32'], ['mul', i, 3, 'int32'], ['add', i, 0.5, 'float32'],
      ['div', i, 4, 'float32'], ['div', 7, i, 'float32'], ['pow', f, 2, 'float32'], ['pow', f, 0.5, 'float32'], ['pow', 2, f, 'float32'],
      ['lt', i, 2.5, 'bool'], ['ge', f, 0, 'bool'], ['eq', i, 3, 'bool'], ['add', i, f, 'float32'], ['maximum', f, i, 'float32'],
    ];
    for (const [op, a, b, dt] of cases) {
      const o = outPair(dt, [2, 7]);
      const g = (x: Pair | number) => (typeof x === 'number' ? x : x.g);
      const c = (x: Pair | number) => (typeof x === 'number' ? x : x.c);
      backend().binary(op, g(a), g(b), o.g);
      cpu.binary(op, c(a), c(b), o.c);
      await expectSame(o, 2e-6);
      free(o);
    }
  });

  it('wraps 8-bit results and handles bool logic', async () => {
    for (const dtype of ['int8', 'uint8', 'bool'] as DType[]) {
      const a = pair(dtype, [4, 9], {}, undefined);
      const b = pair(dtype, [4, 9], { offset: 1, size: 37 });
      for (const op of dtype === 'bool' ? (['logicalAnd', 'logicalOr', 'eq', 'maximum'] as BinaryOp[]) : (['add', 'mul', 'sub', 'lt'] as BinaryOp[])) {
        const o = outPair(outDtype(op, dtype), [4, 9]);
        backend().binary(op, a.g, b.g, o.g);
        cpu.binary(op, a.c, b.c, o.c);
        await expectSame(o);
        free(o);
      }
    }
  });

  it('propagates NaN through maximum/minimum and follows pow edge cases', async () => {
    const a = pair('float32', [20], {}, (n) => hostArray('float32', n, (i) => SPECIAL[i]));
    const b = pair('float32', [20], {}, (n) => hostArray('float32', n, (i) => SPECIAL[(i * 7 + 3) % 20]));
    for (const op of ['maximum', 'minimum', 'pow', 'div'] as BinaryOp[]) {
      const o = outPair('float32', [20]);
      backend().binary(op, a.g, b.g, o.g);
      cpu.binary(op, a.c, b.c, o.c);
      await expectSame(o, 1e-5);
    }
  });

  it('supports in-place updates (out aliases an input) and empty outputs', async () => {
    const x = pair('float32', [33]);
    const y = pair('float32', [33]);
    backend().binary('add', x.g, y.g, x.g);
    cpu.binary('add', x.c, y.c, x.c);
    backend().binary('mul', y.g, y.g, y.g);
    cpu.binary('mul', y.c, y.c, y.c);
    await expectSame(x);
    await expectSame(y);
    const e = outPair('float32', [0, 5]);
    backend().binary('add', { ...x.g, shape: [0, 5], strides: [5, 1] }, 1, e.g);
    await expectSame(e);
  });

  it('handles rank-8 strided views', async () => {
    const shape = [2, 1, 3, 2, 1, 2, 3, 2];
    const a = pair('float32', shape, { strides: [1, 1, 2, 6, 1, 12, 24, 72], size: 144 });
    const b = pair('float32', shape, { strides: [0, 0, 1, 0, 0, 3, 0, 6], size: 12 });
    const o = outPair('float32', shape);
    backend().binary('sub', a.g, b.g, o.g);
    cpu.binary('sub', a.c, b.c, o.c);
    await expectSame(o);
  });
});

gpuDescribe('where', () => {
  it('selects between views and scalars with a bool (or numeric) condition', async () => {
    const cond = pair('bool', [3, 1, 5]);
    const fcond = pair('float32', [3, 1, 5]);
    const a = pair('float32', [3, 1, 5], { offset: 4 });
    const b = pair('float32', [5], {});
    const bb = { g: { ...b.g, shape: [3, 1, 5], strides: [0, 0, 1] }, c: { ...b.c, shape: [3, 1, 5], strides: [0, 0, 1] } };
    for (const [c, x, y] of [[cond, a, bb], [cond, a, -1], [fcond, 2, bb], [cond, 1.5, 2.5]] as [Pair, Pair | number, Pair | number][]) {
      const o = outPair('float32', [3, 1, 5]);
      const g = (v: Pair | number) => (typeof v === 'number' ? v : v.g);
      const cc = (v: Pair | number) => (typeof v === 'number' ? v : v.c);
      backend().where(c.g, g(x), g(y), o.g);
      cpu.where(c.c, cc(x), cc(y), o.c);
      await expectSame(o);
    }
    const i = pair('int32', [3, 1, 5]);
    const o = outPair('int32', [3, 1, 5]);
    backend().where(cond.g, i.g, 7, o.g);
    cpu.where(cond.c, i.c, 7, o.c);
    await expectSame(o);
  });
});

gpuDescribe('thresholdBackward', () => {
  it('x <= threshold ? 0 : grad, one pass: NaN x passes grad, non-finite grad under the threshold gives 0, strided views', async () => {
    const n = SPECIAL.length;
    // Every x of SPECIAL against every grad of SPECIAL (grad rotated by one per row).
    const x = pair('float32', [n, n], {}, (m) => hostArray('float32', m, (i) => SPECIAL[Math.floor(i / n) % n]!));
    const grad = pair('float32', [n, n], { strides: [1, n] }, (m) => hostArray('float32', m, (i) => SPECIAL[(i + Math.floor(i / n)) % n]!));
    for (const threshold of [0, 0.5, -1]) {
      const o = outPair('float32', [n, n]);
      backend().thresholdBackward(grad.g, x.g, threshold, o.g);
      cpu.thresholdBackward(grad.c, x.c, threshold, o.c);
      await expectSame(o, 0);
      free(o);
    }
    const empty = outPair('float32', [0, 3]);
    backend().thresholdBackward({ ...grad.g, shape: [0, 3] }, { ...x.g, shape: [0, 3] }, 0, empty.g);
    free(x, grad, empty);
  });
});
