// dropout cannot match PyTorch element for element (the RNGs differ), so this
// checks its statistics and identities on every backend: the fraction zeroed
// is p (within 5 binomial standard deviations), survivors are scaled by
// exactly 1/(1-p), the gradient is the same mask and scale, one seed gives one
// mask on every backend, and eval mode / p=0 are the identity.
import { afterAll, expect, it } from 'vitest';
import * as kiln from '@kiln/core';
import { backends, describeBackends } from './helpers/env.js';
import { expectClose } from './helpers/compare.js';

const N = 20_000;
const PS = [0.1, 0.5, 0.8];
/** The scale as float32 computes it: survivors must equal x * fround(1/(1-p)) up to one rounding. */
const SCALE_TOL = { rtol: 2e-7, atol: 0 };
const ran = new Map<string, number>();
const count = (backend: string) => ran.set(backend, (ran.get(backend) ?? 0) + 1);
afterAll(() => {
  console.log(`dropout statistics: ${[...ran].map(([b, n]) => `${n} cases on ${b}`).join(', ')}; ` +
    `zeroed fraction within 5 sigma of p (N=${N}), scale rtol ${SCALE_TOL.rtol}, masks exact across backends`);
});

await describeBackends('dropout statistics', (device) => {
  for (const p of PS) {
    it(`p=${p}: zeroes a fraction p, scales survivors by 1/(1-p), and backpropagates the same mask`, async () => {
      count(device);
      // Scopes are synchronous (no tidy across await): `using` frees x and y at the end.
      {
        using x = kiln.tidy(() => kiln.rand([N], { device, generator: new kiln.Generator(7) }).add(0.5).detach().requiresGrad_());
        using y = kiln.dropout(x, p, true, new kiln.Generator(123));
        const xs = await x.toArray();
        const ys = await y.toArray();
        let zeros = 0;
        const kept: number[] = [];
        const expectedKept: number[] = [];
        for (let i = 0; i < N; i++) {
          if (ys[i] === 0) zeros++;
          else {
            kept.push(ys[i]!);
            expectedKept.push(xs[i]! / (1 - p));
          }
        }
        const sigma = Math.sqrt((p * (1 - p)) / N);
        expect(Math.abs(zeros / N - p), `zeroed fraction ${zeros / N} vs p=${p}`).toBeLessThan(5 * sigma);
        expectClose(kept, expectedKept, { rtol: 1e-6, atol: 0 }, 'survivors');

        kiln.tidy(() => y.backward(kiln.onesLike(y)));
        using grad = x.grad!;
        const g = await grad.toArray();
        const scale = Math.fround(1 / (1 - p));
        const expectedGrad = Array.from(ys, (v) => (v === 0 ? 0 : scale));
        expectClose(g, expectedGrad, SCALE_TOL, 'gradient (mask / (1-p))');
      }
    });
  }

  it('the same seed gives the same mask; another seed another', async () => {
    count(device);
    const masks = kiln.tidy(() => {
      const x = kiln.ones([1000], { device });
      return [42, 42, 43].map((seed) => kiln.dropout(x, 0.5, true, new kiln.Generator(seed)));
    });
    const [a, b, c] = await Promise.all(masks.map((m) => m.toArray()));
    for (const m of masks) m.dispose();
    expect(Array.from(a!)).toEqual(Array.from(b!));
    expect(Array.from(a!)).not.toEqual(Array.from(c!));
  });

  it('eval mode and p=0 are the identity (values and gradient); p=1 zeroes everything', async () => {
    count(device);
    using x = kiln.randn([4, 5], { device, generator: new kiln.Generator(3) }).requiresGrad_();
    const xs = Array.from(await x.toArray());
    using evalOut = kiln.dropout(x, 0.5, false);
    using p0 = kiln.dropout(x, 0, true);
    using p1 = kiln.dropout(x, 1, true);
    expect(Array.from(await evalOut.toArray())).toEqual(xs);
    expect(Array.from(await p0.toArray())).toEqual(xs);
    expect(Array.from(await p1.toArray()).every((v) => v === 0)).toBe(true);
    kiln.tidy(() => evalOut.sum().backward());
    using grad = x.grad!;
    expect(Array.from(await grad.toArray())).toEqual(xs.map(() => 1));
  });

  it('rejects p outside [0, 1] naming the op', () => {
    const x = kiln.ones([3], { device });
    expect(() => kiln.dropout(x, 1.5)).toThrow(/dropout:/);
    expect(() => kiln.dropout(x, -0.1)).toThrow(kiln.KilnError);
    x.dispose();
  });
});

const all = await backends();
it.runIf(all.length > 1)(`one seed gives one mask on every backend (${all.join(', ')})`, async () => {
  const masks = await Promise.all(all.map(async (device) => {
    using x = kiln.ones([4096], { device });
    using y = kiln.dropout(x, 0.3, true, new kiln.Generator(2024));
    return Array.from(await y.toArray());
  }));
  for (let i = 1; i < masks.length; i++) expect(masks[i], `${all[i]} vs ${all[0]}`).toEqual(masks[0]);
});
