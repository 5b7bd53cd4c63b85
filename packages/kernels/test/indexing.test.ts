import { it } from 'vitest';
import { backend, cpu, expectSame, gpuDescribe, hostArray, outPair, pair, rng } from './helpers.js';

/** An int32 index pair with values in [0, bound). */
function indexPair(shape: number[], bound: number, seed: number, layout = {}) {
  const r = rng(seed);
  return pair('int32', shape, layout, (n) => hostArray('int32', n, () => Math.floor(r() * bound)));
}

gpuDescribe('indexing', () => {
  it('gather along each dim, from strided x with a strided index', async () => {
    const x = pair('float32', [4, 5, 3], { strides: [1, 4, 20], size: 60 });
    for (const dim of [0, 1, 2]) {
      const index = indexPair([3, 2, 3], x.g.shape[dim], dim + 1, { offset: 2 });
      const o = outPair('float32', [3, 2, 3]);
      backend().gather(x.g, dim, index.g, o.g);
      cpu.gather(x.c, dim, index.c, o.c);
      await expectSame(o);
    }
  });

  it('indexSelect along each dim with repeated indices, int and float', async () => {
    for (const dtype of ['float32', 'int32'] as const) {
      const x = pair(dtype, [3, 4, 5], { offset: 1 });
      for (const dim of [0, 1, 2]) {
        const index = indexPair([7], x.g.shape[dim], 10 + dim);
        const shape = [...x.g.shape];
        shape[dim] = 7;
        const o = outPair(dtype, shape);
        backend().indexSelect(x.g, dim, index.g, o.g);
        cpu.indexSelect(x.c, dim, index.c, o.c);
        await expectSame(o);
      }
    }
    const x = pair('float32', [3, 4]);
    const empty = indexPair([0], 3, 1);
    const o = outPair('float32', [0, 4]);
    backend().indexSelect(x.g, 0, empty.g, o.g);
    await expectSame(o);
  });

  it('scatterAdd accumulates colliding indices without races, index smaller than out', async () => {
    for (const dim of [0, 1]) {
      const out = pair('float32', [5, 6]);
      const index = indexPair([4, 3], out.g.shape[dim], 20 + dim);
      const src = pair('float32', [4, 5], { strides: [1, 4], size: 20 });
      backend().scatterAdd(out.g, dim, index.g, src.g);
      cpu.scatterAdd(out.c, dim, index.c, src.c);
      await expectSame(out);
    }
    // Many indices colliding on few outputs: the case float atomics would race on.
    const out = pair('float32', [3], {}, (n) => new Float32Array(n));
    const index = indexPair([5000], 3, 7);
    const src = pair('float32', [5000]);
    backend().scatterAdd(out.g, 0, index.g, src.g);
    cpu.scatterAdd(out.c, 0, index.c, src.c);
    await expectSame(out, 1e-4);
  });

  it('indexAdd adds rows along each dim with repeated indices', async () => {
    for (const dim of [0, 1, 2]) {
      const out = pair('float32', [4, 3, 5], { strides: [1, 20, 4], size: 60 });
      const shape = [4, 3, 5];
      shape[dim] = 6;
      const src = pair('float32', shape);
      const index = indexPair([6], out.g.shape[dim], 30 + dim);
      backend().indexAdd(out.g, dim, index.g, src.g);
      cpu.indexAdd(out.c, dim, index.c, src.c);
      await expectSame(out);
    }
    const iout = pair('int32', [5, 2]);
    const isrc = pair('int32', [3, 2]);
    const index = indexPair([3], 5, 3);
    backend().indexAdd(iout.g, 0, index.g, isrc.g);
    cpu.indexAdd(iout.c, 0, index.c, isrc.c);
    await expectSame(iout);
  });
});
