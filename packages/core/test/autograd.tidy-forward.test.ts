// The synchronous-scope pattern (forward in tidy(), backward and readback
// after it) must give the gradients of the same computation without tidy:
// tidy disposes intermediate views, and an op's backward must not depend on
// them still being alive. Regression test: conv2d's bias and batchNorm's
// weight/bias, passed as views, lost their gradient (their requiresGrad was
// read in backward, after tidy had disposed the views).
import { expect, it } from 'vitest';
import * as kiln from '@kiln/core';
import type { Tensor } from '@kiln/core';

async function grads(useTidy: boolean, forward: (leaf: Tensor) => Tensor): Promise<number[]> {
  const leaf = kiln.randn([6], { generator: new kiln.Generator(5) }).requiresGrad_();
  const y = useTidy ? kiln.tidy(() => forward(leaf)) : forward(leaf);
  kiln.tidy(() => y.mul(kiln.arange(0, y.numel(), 1, { dtype: 'float32' }).reshape([...y.shape])).sum().backward());
  expect(leaf.grad, 'the leaf behind the view gets a gradient').not.toBeNull();
  const g = Array.from(await leaf.grad!.toArray());
  leaf.grad!.dispose();
  leaf.dispose();
  y.dispose();
  return g;
}

const x = () => kiln.randn([2, 3, 4, 4], { generator: new kiln.Generator(9) });

it('conv2d: a bias given as a view gets the same gradient when the forward ran in tidy()', async () => {
  const w = kiln.randn([3, 3, 3, 3], { generator: new kiln.Generator(2) });
  const f = (leaf: Tensor) => kiln.conv2d(x(), w, leaf.slice(0, 0, 6, 2), { padding: 1 });
  expect(await grads(true, f)).toEqual(await grads(false, f));
});

it('batchNorm: weight and bias given as views get the same gradients when the forward ran in tidy()', async () => {
  const f = (leaf: Tensor) => kiln.batchNorm(x(), null, null, { weight: leaf.slice(0, 0, 6, 2), bias: leaf.slice(0, 1, 6, 2), training: true });
  const g = await grads(true, f);
  expect(g).toEqual(await grads(false, f));
  expect(g.some((v) => v !== 0)).toBe(true);
});
