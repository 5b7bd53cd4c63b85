// skipInit builds modules without drawing their initial weights (what a
// model about to load a checkpoint wants), and only inside its callback.
import { expect, it } from 'vitest';
import { manualSeed } from '@kiln/core';
import { Linear, skipInit } from '@kiln/nn';

it('skipInit leaves weights as allocated inside, draws them outside', async () => {
  manualSeed(0);
  const skipped = skipInit(() => new Linear(16, 4));
  const drawn = new Linear(16, 4);
  // The cpu backend allocates zeroed host arrays: a skipped init leaves them zero.
  expect(Array.from(await skipped.weight.toArray()).every((v) => v === 0)).toBe(true);
  expect(Array.from(await drawn.weight.toArray()).some((v) => v !== 0)).toBe(true);
});
