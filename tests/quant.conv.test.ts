// The fused int8 conv (quantizedConv2d -> Backend.conv2d with a quant
// epilogue: implicit GEMM over the packed channels-last activation) against
// the im2col + integer GEMM route it replaces: the integers are equal bit for
// bit (both are exact int32 sums with the same requantizing epilogue), on the
// CPU reference and on WebGPU with every inner-product path (dot4I8Packed,
// unpack4xI8, extractBits), for strides, padding, dilation, 1x1, 3x3 and
// 7x7 kernels, channel counts that are not a multiple of 4 (padded to a
// word), ragged output edges, float bias and fused ReLU.
import { afterAll, describe, expect, it } from 'vitest';
import * as kiln from '@kiln/core';
import { describeWebGPU } from './helpers/env.js';

/** Deterministic integers in [lo, hi]. */
function ints(n: number, lo: number, hi: number, seed: number): number[] {
  let s = seed >>> 0;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return lo + (s % (hi - lo + 1));
  });
}

interface Case { N: number; C: number; H: number; W: number; O: number; k: number; stride: number; pad: number; dil: number; bias: boolean; relu: boolean }

const CASES: Case[] = [
  { N: 1, C: 8, H: 9, W: 7, O: 12, k: 3, stride: 1, pad: 1, dil: 1, bias: true, relu: true },
  { N: 2, C: 16, H: 10, W: 10, O: 9, k: 3, stride: 2, pad: 1, dil: 1, bias: true, relu: false },
  { N: 1, C: 4, H: 11, W: 6, O: 33, k: 1, stride: 2, pad: 0, dil: 1, bias: false, relu: false },
  { N: 1, C: 12, H: 8, W: 9, O: 5, k: 3, stride: 1, pad: 2, dil: 2, bias: true, relu: true },
  { N: 3, C: 64, H: 5, W: 5, O: 64, k: 3, stride: 1, pad: 1, dil: 1, bias: true, relu: true },
  // The stem's shape class: 3 channels (padded to a word), 7x7, stride 2, padding 3.
  { N: 1, C: 3, H: 19, W: 17, O: 16, k: 7, stride: 2, pad: 3, dil: 1, bias: true, relu: true },
  { N: 2, C: 6, H: 7, W: 7, O: 8, k: 3, stride: 1, pad: 1, dil: 1, bias: false, relu: false },
];

function operands(c: Case, device: string) {
  const zx = 37;
  const xi = kiln.tensor(ints(c.N * c.C * c.H * c.W, 0, 255, c.C * 31 + c.H), { dtype: 'uint8', device }).reshape([c.N, c.C, c.H, c.W]);
  const x = kiln.QTensor.fromIntRepr(xi, 'quint8', { kind: 'per_tensor', scale: 0.05, zeroPoint: zx });
  const wi = kiln.tensor(ints(c.O * c.C * c.k * c.k, -127, 127, c.O * 17 + c.k), { dtype: 'int8', device }).reshape([c.O, c.C, c.k, c.k]);
  const scales = ints(c.O, 1, 100, c.O).map((v) => v * 1e-4);
  const w = kiln.packConvWeight(wi, scales);
  const bias = c.bias ? ints(c.O, -500, 500, 9).map((v) => v / 100) : null;
  const geometry: kiln.QConvGeometry = { kernel: [c.k, c.k], stride: [c.stride, c.stride], padding: [c.pad, c.pad], dilation: [c.dil, c.dil] };
  return { x, w, bias, geometry, out: { scale: 0.02 * c.C * c.k, zeroPoint: 60, relu: c.relu } };
}

async function run(c: Case, device: string, path: 'im2col' | 'fused'): Promise<ArrayLike<number>> {
  kiln.quantizedConvOverride.path = path;
  try {
    const o = operands(c, device);
    const y = kiln.quantizedConv2d(o.x, o.w, o.bias, o.geometry, o.out);
    return await y.intRepr().toArray();
  } finally {
    delete kiln.quantizedConvOverride.path;
  }
}

const name = (c: Case) => `[${c.N}, ${c.C}, ${c.H}, ${c.W}] * ${c.O}x${c.k}x${c.k} s${c.stride} p${c.pad} d${c.dil}${c.bias ? ' +bias' : ''}${c.relu ? ' relu' : ''}`;

/** How many integers are not at the clamp ends: the cases must exercise the epilogue, not only saturate. */
function interior(v: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < v.length; i++) if (v[i]! > 0 && v[i]! < 255) n++;
  return n;
}

describe('fused int8 conv: CPU reference', () => {
  for (const c of CASES) {
    it(`${name(c)}: equals im2col + integer GEMM`, async () => {
      const want = await run(c, 'cpu', 'im2col');
      const got = await run(c, 'cpu', 'fused');
      expect(interior(want)).toBeGreaterThan(want.length / 4);
      expect(Array.from(got)).toEqual(Array.from(want));
    });
  }
});

await describeWebGPU('fused int8 conv: WebGPU kernel equals the CPU reference', async () => {
  const kernels = await import('@kiln/kernels');
  const override = kernels.int8GemmOverride;
  afterAll(() => { delete override.dot; });
  for (const dot of ['dot4', 'unpack', 'bits'] as const) {
    describe(`${dot} path`, () => {
      for (const c of CASES) {
        it(name(c), async () => {
          const want = await run(c, 'cpu', 'im2col');
          override.dot = dot;
          try {
            const got = await run(c, 'webgpu', 'fused');
            expect(Array.from(got)).toEqual(Array.from(want));
          } finally {
            delete override.dot;
          }
        });
      }
    });
  }
});
