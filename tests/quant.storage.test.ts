// Packed 8-bit storage: int8/uint8 tensors take one byte per element on the
// GPU (4 per u32 word) and every primitive that accepts them computes what
// the CPU reference backend computes, through strided views, odd lengths
// (partial last word), slice writes that share words with untouched
// elements, and 8-bit wrapping casts. The CPU backend is the reference here:
// its casts are PyTorch's (tests/ops.* check those against PyTorch).
import { describe, expect, it } from 'vitest';
import * as kiln from '@kiln/core';
import { describeWebGPU } from './helpers/env.js';

const values = (n: number, lo: number, hi: number) => Array.from({ length: n }, (_, i) => lo + ((i * 37 + 11) % (hi - lo + 1)));

/** Runs `fn` on both backends with the same host inputs and expects equal outputs. */
async function same(fn: (device: string) => kiln.Tensor): Promise<void> {
  const ref = fn('cpu');
  const got = fn('webgpu');
  expect(got.dtype).toBe(ref.dtype);
  expect(got.shape).toEqual(ref.shape);
  expect(Array.from(await got.toArray())).toEqual(Array.from(await ref.toArray()));
  ref.dispose();
  got.dispose();
}

await describeWebGPU('packed int8/uint8 storage on WebGPU', () => {
  it('stores 1 byte per element: memory() counts 1 byte, the GPU buffer is ceil(n/4) words', () => {
    const before = kiln.memory('webgpu').bytesInUse;
    const t = kiln.zeros([1001], { dtype: 'int8', device: 'webgpu' });
    expect(kiln.memory('webgpu').bytesInUse - before).toBe(1001);
    const storage = t._view().storage as unknown as { buffer: GPUBuffer };
    // The pool rounds to a bucket; a word per element would need >= 4004 bytes.
    expect(storage.buffer.size).toBeLessThan(2 * 1004);
    t.dispose();
  });

  for (const dtype of ['int8', 'uint8'] as const) {
    const [lo, hi] = dtype === 'int8' ? [-128, 127] : [0, 255];
    describe(dtype, () => {
      it('round-trips host data of odd length, and reads sub-ranges at unaligned offsets', async () => {
        const data = values(37, lo, hi);
        const t = kiln.tensor(data, { dtype, device: 'webgpu' });
        expect(Array.from(await t.toArray())).toEqual(data);
        const s = t.slice(0, 5, 30, 3);
        expect(Array.from(await s.toArray())).toEqual(data.filter((_, i) => i >= 5 && i < 30 && (i - 5) % 3 === 0));
        const one = t.slice(0, 13, 14);
        expect(await one.item()).toBe(data[13]);
        t.dispose(); s.dispose(); one.dispose();
      });

      it('transposed and broadcast views read the right bytes', async () => {
        const data = values(7 * 5, lo, hi);
        await same((d) => kiln.tensor(data, { dtype, device: d }).reshape([7, 5]).transpose(0, 1).contiguous());
        await same((d) => kiln.tensor(data.slice(0, 5), { dtype, device: d }).reshape([1, 5]).expand([3, 5]).contiguous());
      });

      it('casts wrap like PyTorch (float -> 8-bit truncates, then keeps the low byte)', async () => {
        const f = [-300.7, -129, -128.5, -1.5, -0.4, 0, 0.9, 127.6, 128, 255.9, 256, 1000.2, 3];
        await same((d) => kiln.tensor(f, { device: d }).to(dtype));
        await same((d) => kiln.tensor(values(9, lo, hi), { dtype, device: d }).to('float32'));
        await same((d) => kiln.tensor(values(9, lo, hi), { dtype, device: d }).to(dtype === 'int8' ? 'uint8' : 'int8'));
      });

      it('elementwise, comparison, where and reductions on packed operands', async () => {
        const a = values(23, lo, hi);
        const b = values(23, lo, hi).reverse();
        const mk = (d: string, x: number[]) => kiln.tensor(x, { dtype, device: d });
        await same((d) => mk(d, a).add(mk(d, b)));
        await same((d) => mk(d, a).mul(3));
        await same((d) => mk(d, a).add(0.5));
        await same((d) => mk(d, a).neg());
        await same((d) => mk(d, a).lt(mk(d, b)));
        await same((d) => kiln.where(mk(d, a).gt(mk(d, b)), mk(d, a), mk(d, b)));
        await same((d) => mk(d, a).reshape([1, 23]).max(1).values);
        await same((d) => mk(d, a).sum());
        await same((d) => mk(d, a).argmin());
      });

      it('in-place writes into a slice keep the neighbours that share its words', async () => {
        const data = values(19, lo, hi);
        await same((d) => {
          const t = kiln.tensor(data, { dtype, device: d });
          t.slice(0, 3, 10, 2).fill_(7);
          t.slice(0, 11, 14).add_(1);
          return t;
        });
        await same((d) => {
          const t = kiln.zeros([4, 6], { dtype, device: d });
          t.transpose(0, 1).slice(0, 1, 5).copy_(kiln.tensor(values(16, lo, hi), { device: d }).reshape([4, 4]));
          return t;
        });
      });

      it('indexing: gather/indexSelect of packed data with packed indices, indexAdd into packed storage', async () => {
        const data = values(30, lo, hi);
        const mk = (d: string) => kiln.tensor(data, { dtype, device: d }).reshape([5, 6]);
        const index = (d: string) => kiln.tensor([4, 0, 2, 2, 1], { dtype: 'uint8', device: d });
        await same((d) => mk(d).indexSelect(0, index(d)));
        await same((d) => mk(d).gather(1, kiln.tensor([[5, 0], [1, 1], [2, 3], [0, 0], [4, 5]], { dtype: 'int8', device: d })));
        await same((d) => mk(d).indexAdd(0, index(d), kiln.ones([5, 6], { dtype, device: d })));
        await same((d) => kiln.cat([mk(d), mk(d).slice(1, 1, 4)], 1));
      });
    });
  }
});
