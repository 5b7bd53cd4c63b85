import { describe, it, expect } from 'vitest';
import { tensor, randn, zeros, arange, memory, tidy, noGrad } from '../src/index.js';

describe('core smoke', () => {
  it('computes and differentiates', async () => {
    const a = tensor([[1, 2, 3], [4, 5, 6]], { dtype: 'float32', requiresGrad: true });
    const b = tensor([10, 20, 30], { dtype: 'float32' });
    const y = a.mul(b).add(1).relu().sum();
    expect(await y.item()).toBe(466);
    y.backward();
    expect(Array.from(await a.grad!.toArray())).toEqual([10, 20, 30, 10, 20, 30]);
    const m = randn([3, 4]).matmul(randn([4, 5]));
    expect(m.shape).toEqual([3, 5]);
    const s = arange(12).reshape(3, 4).to('float32').softmax(1);
    const sums = await s.sum(1).toArray();
    expect(Math.abs(sums[0]! - 1)).toBeLessThan(1e-6);
    const t = arange(24).reshape(2, 3, 4).permute(2, 0, 1).contiguous();
    expect(Array.from(await t.reshape(-1).slice(0, 0, 6).toArray())).toEqual([0, 4, 8, 12, 16, 20]);
  });
});
