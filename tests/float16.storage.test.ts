// float16 storage and conversion on every backend: a float16 tensor holds 2
// bytes per element; every one of the 65536 float16 bit patterns widens to
// its exact float32 value; float32 -> float16 rounds to nearest, ties to
// even (subnormals, overflow to inf, NaN) exactly as @petamoriken/float16
// (the host conversion, itself IEEE 754's rule), including every tie
// between adjacent float16 values; Module.half() casts in place; autograd
// flows through casts with gradients in the input's dtype.
import { afterAll, expect, it } from 'vitest';
import * as kiln from '@kiln/core';
import { Linear } from '@kiln/nn';
import { describeBackends } from './helpers/env.js';

const ran = new Map<string, number>();
afterAll(() => console.log(`float16 storage: ${[...ran].map(([b, n]) => `${n} cases on ${b}`).join(', ')} (exact: all 65536 patterns, all ties)`));

/** Every float16 value as float32, in bit-pattern order (NaN patterns give NaN). */
function allHalfValues(): Float32Array {
  const bits = new Uint16Array(65536).map((_, i) => i);
  const view = new DataView(new ArrayBuffer(4));
  return Float32Array.from(bits, (b) => {
    const e = (b >> 10) & 0x1f;
    const m = b & 0x3ff;
    const s = b & 0x8000 ? -1 : 1;
    if (e === 0) return s * m * 2 ** -24;
    if (e === 31) return m ? NaN : s * Infinity;
    view.setUint32(0, ((b & 0x8000) << 16) | ((e + 112) << 23) | (m << 13));
    return view.getFloat32(0);
  });
}

const sameValues = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  for (let i = 0; i < b.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (!(x === y || (Number.isNaN(x) && Number.isNaN(y)))) return `index ${i}: got ${x}, expected ${y}`;
  }
  return null;
};

await describeBackends('float16 storage', (device) => {
  const test = (name: string, fn: () => Promise<void> | void) => it(name, async () => {
    ran.set(device, (ran.get(device) ?? 0) + 1);
    await fn();
  });

  test('2 bytes per element', () => {
    const before = kiln.memory(device).bytesInUse;
    const t = kiln.zeros([1001], { device, dtype: 'float16' });
    expect(kiln.memory(device).bytesInUse - before).toBe(2002);
    t.dispose();
  });

  test('every float16 bit pattern widens to its exact float32 value', async () => {
    const values = allHalfValues();
    const h = kiln.fromArray(values, [values.length], { device, dtype: 'float16' });
    const wide = h.to('float32');
    expect(sameValues(await wide.toArray(), values)).toBeNull();
    expect(sameValues(await h.toArray(), values)).toBeNull();
    h.dispose();
    wide.dispose();
  });

  test('float32 -> float16 rounds to nearest even at every tie, around every tie, and at the edges', async () => {
    const halves = allHalfValues().filter((v) => Number.isFinite(v) && v >= 0);
    const probe: number[] = [];
    for (let i = 0; i + 1 < halves.length; i++) {
      const mid = Math.fround((halves[i]! + halves[i + 1]!) / 2);
      // The tie itself and the float32 values just below and above it.
      probe.push(mid, -mid, nextFloat(mid, -1), nextFloat(mid, 1));
    }
    probe.push(65504, 65519.99, 65520, 1e30, -1e30, Infinity, -Infinity, NaN, 2 ** -25, 2 ** -26, 1e-40, 0, -0);
    const x = kiln.fromArray(probe, [probe.length], { device });
    const h = x.to('float16');
    const expected = kiln.fromArray(probe, [probe.length], { dtype: 'float16' }).dataSync();
    expect(sameValues(await h.toArray(), expected)).toBeNull();
    x.dispose();
    h.dispose();
  });

  test('strided float16 views read and write; Module.half()/float() cast in place; gradients come back in the input dtype', async () => {
    const x = kiln.arange(0, 12, 1, { device }).reshape([3, 4]).to('float16');
    const t = x.transpose(0, 1).contiguous();
    expect(Array.from(await t.toArray())).toEqual([0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
    x.select(1, 2).fill_(-1);
    expect(Array.from(await x.toArray())).toEqual([0, 1, -1, 3, 4, 5, -1, 7, 8, 9, -1, 11]);
    const lin = new Linear(4, 2, { device });
    const w = lin.weight;
    lin.half();
    expect(lin.weight).toBe(w);
    expect([lin.weight.dtype, lin.bias!.dtype]).toEqual(['float16', 'float16']);
    const y = lin.call(x);
    expect(y.dtype).toBe('float16');
    lin.float();
    expect(lin.weight.dtype).toBe('float32');
    const p = kiln.fromArray([1, 2], [2], { device, requiresGrad: true });
    const s = p.half().mul(3).sum();
    s.backward();
    expect(p.grad!.dtype).toBe('float32');
    expect(Array.from(await p.grad!.toArray())).toEqual([3, 3]);
    for (const v of [x, t, y, p, s]) v.dispose();
    lin.dispose();
  });
});

function nextFloat(x: number, dir: 1 | -1): number {
  const f = new Float32Array([x]);
  const u = new Int32Array(f.buffer);
  u[0]! += x >= 0 ? dir : -dir;
  return f[0]!;
}
