// The integer GEMM (quantizedMatmul -> Backend.matmul with a quant epilogue):
// the CPU reference equals an independent int32 computation, and the WebGPU
// int8 kernel equals the CPU reference bit for bit on every inner-product
// path (dot4I8Packed, unpack4xI8, extractBits fallback), every input type
// (uint8 activations with a zero point, int8), float32 and requantized
// int8/uint8 outputs, bias and fused ReLU, and shapes with ragged edges.
import { afterAll, describe, expect, it } from 'vitest';
import * as kiln from '@kiln/core';
import { describeWebGPU } from './helpers/env.js';
import { EXACT, expectClose } from './helpers/compare.js';

/** Deterministic integers in [lo, hi]. */
function ints(n: number, lo: number, hi: number, seed: number): number[] {
  let s = seed >>> 0;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return lo + (s % (hi - lo + 1));
  });
}

interface Case { M: number; K: number; N: number; a: 'int8' | 'uint8'; za: number; out: 'float32' | 'int8' | 'uint8'; bias: boolean; relu: boolean; floatBias?: boolean }

const CASES: Case[] = [
  { M: 5, K: 12, N: 7, a: 'uint8', za: 77, out: 'float32', bias: true, relu: false },
  { M: 33, K: 148, N: 65, a: 'uint8', za: 0, out: 'float32', bias: false, relu: true },
  { M: 1, K: 512, N: 100, a: 'uint8', za: 255, out: 'float32', bias: true, relu: false },
  { M: 17, K: 36, N: 9, a: 'int8', za: -5, out: 'float32', bias: true, relu: true },
  { M: 9, K: 64, N: 19, a: 'uint8', za: 130, out: 'uint8', bias: true, relu: false },
  { M: 20, K: 20, N: 31, a: 'uint8', za: 3, out: 'uint8', bias: true, relu: true },
  { M: 6, K: 148, N: 13, a: 'int8', za: 0, out: 'int8', bias: false, relu: false },
  { M: 11, K: 72, N: 10, a: 'uint8', za: 60, out: 'uint8', bias: true, relu: false, floatBias: true },
  { M: 7, K: 40, N: 6, a: 'uint8', za: 9, out: 'uint8', bias: true, relu: true, floatBias: true },
];

function operands(c: Case, device: string) {
  const [alo, ahi] = c.a === 'uint8' ? [0, 255] : [-128, 127];
  const aVals = ints(c.M * c.K, alo, ahi, c.M * 7 + c.K);
  const wVals = ints(c.N * c.K, -128, 127, c.N * 13 + c.K);
  const colSum = Array.from({ length: c.N }, (_, n) => wVals.slice(n * c.K, (n + 1) * c.K).reduce((x, y) => x + y, 0));
  // Requantizing scales ~1/(K * 64 * 128) keep outputs inside the int8 range but not all at the clamp.
  const scale = ints(c.N, 1, 1000, c.N).map((v) => (c.out === 'float32' ? v * 1e-4 : (v + 500) / (c.K * 128 * 128 * 4)));
  const bias = c.out === 'float32' || c.floatBias ? ints(c.N, -1000, 1000, 3).map((v) => v / 100) : ints(c.N, -20000, 20000, 5);
  const t = {
    a: kiln.tensor(aVals, { dtype: c.a, device }).reshape([c.M, c.K]),
    w: kiln.tensor(wVals, { dtype: 'int8', device }).reshape([c.N, c.K]),
    opts: {
      aZeroPoint: kiln.tensor([c.za], { dtype: 'int32', device }),
      bColSum: kiln.tensor(colSum, { dtype: 'int32', device }),
      scale: kiln.tensor(scale, { dtype: 'float32', device }),
      bias: c.bias ? kiln.tensor(bias, { dtype: c.out === 'float32' || c.floatBias ? 'float32' : 'int32', device }) : undefined,
      out: c.out === 'float32' ? ('float32' as const) : { dtype: c.out, zeroPoint: c.out === 'uint8' ? 100 : -7 },
      relu: c.relu,
    },
  };
  return { ...t, aVals, wVals, scale, bias };
}

const name = (c: Case) => `${c.a} a (zp ${c.za}) [${c.M}, ${c.K}] x int8 [${c.N}, ${c.K}]^T -> ${c.out}${c.bias ? (c.floatBias ? ' +float bias' : ' +bias') : ''}${c.relu ? ' relu' : ''}`;

describe('integer GEMM: CPU reference', () => {
  for (const c of CASES.filter((x) => x.out === 'float32')) {
    it(`${name(c)} equals an independent int32 computation`, () => {
      const o = operands(c, 'cpu');
      const y = kiln.quantizedMatmul(o.a, o.w, o.opts).dataSync();
      const want = new Float32Array(c.M * c.N);
      for (let m = 0; m < c.M; m++) {
        for (let n = 0; n < c.N; n++) {
          let v = 0;
          for (let k = 0; k < c.K; k++) v += (o.aVals[m * c.K + k]! - c.za) * o.wVals[n * c.K + k]!;
          let r = Math.fround(Math.fround(v) * Math.fround(o.scale[n]!));
          if (c.bias) r = Math.fround(r + Math.fround(o.bias[n]!));
          want[m * c.N + n] = c.relu && r < 0 ? 0 : r;
        }
      }
      expectClose(y, want, EXACT, 'float output');
    });
  }
});

await describeWebGPU('integer GEMM: WebGPU kernel equals the CPU reference', async () => {
  const kernels = await import('@kiln/kernels');
  const override = kernels.int8GemmOverride;
  const backend = kiln.getBackend('webgpu') as unknown as { info: { wgslLanguageFeatures?: string[] } };
  afterAll(() => { delete override.dot; });
  it('the device reports packed_4x8_integer_dot_product (Dawn on lavapipe has it), so dot4I8Packed is the default path', () => {
    expect(backend.info.wgslLanguageFeatures).toContain('packed_4x8_integer_dot_product');
  });
  for (const dot of ['dot4', 'unpack', 'bits'] as const) {
    describe(`${dot} path`, () => {
      for (const c of CASES) {
        it(name(c), async () => {
          override.dot = dot;
          const ref = operands(c, 'cpu');
          const gpu = operands(c, 'webgpu');
          const want = kiln.quantizedMatmul(ref.a, ref.w, ref.opts);
          const got = kiln.quantizedMatmul(gpu.a, gpu.w, gpu.opts);
          expect(got.dtype).toBe(c.out);
          // Integer outputs are exact; float outputs are one product and one add in float32 on both, exact too.
          expectClose(await got.toArray(), want.dataSync(), EXACT, `${dot} output`);
          delete override.dot;
        });
      }
    });
  }
});
