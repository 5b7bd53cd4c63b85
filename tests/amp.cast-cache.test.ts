// The autocast cast cache (PyTorch's autocast weight cache): inside one
// autocast region a float32 parameter used by several float16 ops is cast
// once (one 'cast' op in the trace, however many uses), its gradient sums
// every use in float16 before the cast sends it back as float32 (exactly
// the graph of one float16 copy used N times, as PyTorch's cache gives), an
// in-place update of the parameter inside the region (a new version) makes
// the next use cast afresh, nested regions share the outer region's cache,
// and the cache is freed when the region ends (no tensors left behind).
// Activations and other non-leaf tensors are cast per use, as in PyTorch.
import { afterAll, expect, it } from 'vitest';
import * as kiln from '@kiln/core';
import type { Tensor } from '@kiln/core';
import { describeEachBackend, webgpuStatus } from './helpers/env.js';

const webgpu = await webgpuStatus();
const ran = new Map<string, number>();
afterAll(() => console.log(`autocast cast cache: ${[...ran].map(([b, n]) => `${n} cases on ${b}`).join(', ')}`));

/** The ops `fn` dispatches, by name. */
function opsOf<T>(fn: () => T): { result: T; ops: string[] } {
  const ops: string[] = [];
  const result = kiln.withTracer((op) => ops.push(op.op), fn);
  return { result, ops };
}
const casts = (ops: string[]) => ops.filter((o) => o === 'cast').length;

describeEachBackend('autocast cast cache', webgpu, (device) => {
  const test = (name: string, fn: () => Promise<void> | void) => it(name, async () => {
    ran.set(device, (ran.get(device) ?? 0) + 1);
    await fn();
  });
  const param = (shape: number[], seed: number) => kiln.randn(shape, { device, generator: new kiln.Generator(seed) }).requiresGrad_();
  const input = (shape: number[], seed: number) => kiln.randn(shape, { device, generator: new kiln.Generator(seed) });

  test('a parameter used three times is cast once; the activation x is cast per use', () => {
    const w = param([4, 6], 1);
    const x = input([3, 6], 2);
    const { ops } = opsOf(() => kiln.autocast(() => [0, 1, 2].map(() => kiln.linear(x, w))));
    // One cast of w, three of x (x is not a parameter).
    expect(casts(ops)).toBe(4);
  });

  test('the gradient through the cached cast sums every use in float16, then comes back float32 (PyTorch\'s cached cast)', async () => {
    const w = param([5, 7], 3);
    const x = input([4, 7], 4);
    kiln.autocast(() => kiln.linear(x, w).add(kiln.linear(x.mul(2), w))).float().sum().backward();
    expect(w.grad!.dtype).toBe('float32');
    // The same graph by hand: one float16 copy of w used twice; its gradient is the float16 sum of both uses.
    const wh = w.detach().half().requiresGrad_();
    kiln.linear(x.half(), wh).add(kiln.linear(x.mul(2).half(), wh)).float().sum().backward();
    expect(Array.from(await w.grad!.toArray())).toEqual(Array.from(await wh.grad!.float().toArray()));
  });

  test('an in-place update inside the region (new version) is cast afresh; nested regions share the cache', async () => {
    const w = param([2, 3], 5);
    const x = input([1, 3], 6);
    const { result, ops } = opsOf(() => kiln.autocast(() => {
      const a = kiln.linear(x, w);
      const b = kiln.autocast(() => kiln.linear(x, w)); // nested: the outer region's cached cast
      kiln.noGrad(() => w.mul_(2));
      const c = kiln.linear(x, w); // w changed: a new cast
      return [a, b, c];
    }));
    expect(casts(ops)).toBe(3 + 2); // x three times, w twice
    const [a, b, c] = await Promise.all(result.map((t) => t.float().toArray()));
    expect(Array.from(b!)).toEqual(Array.from(a!));
    // The doubled weights give outputs that are twice a's (float16 arithmetic: within one float16 ulp).
    for (let i = 0; i < a!.length; i++) expect(Math.abs(c![i]! - 2 * a![i]!)).toBeLessThanOrEqual(Math.abs(2 * a![i]!) * 2 ** -10 + 2 ** -20);
  });

  test('the region frees its cache: no tensors left behind', () => {
    const w = param([3, 3], 7);
    const x = input([2, 3], 8);
    const before = kiln.memory().numTensors;
    kiln.autocast(() => kiln.linear(x, w).dispose());
    expect(kiln.memory().numTensors).toBe(before);
    const inside = kiln.autocast(() => {
      const y = kiln.linear(x, w);
      const held = kiln.memory().numTensors;
      kiln.clearAutocastCache();
      return { y, freed: held - kiln.memory().numTensors };
    });
    expect(inside.freed).toBe(1);
    inside.y.dispose();
  });
});
