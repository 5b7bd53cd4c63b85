// linear(x, w, b) adds its bias in the GEMM epilogue the backends implement
// (MatmulEpilogue.bias along n), not by a second elementwise pass: proven on
// a recording copy of the CPU backend, which sees one matmul carrying the
// bias and no add. Values and gradients match the unfused matmul + add to
// 2 ULP (the CPU backend adds the bias before rounding the dot product to
// float32, one rounding fewer than a separate add), for 1-D, 2-D and batched
// inputs, with the bias as a strided view too.
import { describe, expect, it } from 'vitest';
import { expectClose } from '@kiln/test-helpers';
import * as kiln from '@kiln/core';
import { cpuBackend, type Backend, type MatmulEpilogue } from '@kiln/core';

const calls: { op: string; epilogue?: MatmulEpilogue }[] = [];
const recording = Object.create(cpuBackend, {
  name: { value: 'cpu-recording' },
  matmul: { writable: true, value(this: Backend, a: never, b: never, out: never, epilogue?: MatmulEpilogue) { calls.push({ op: 'matmul', epilogue }); cpuBackend.matmul(a, b, out, epilogue as never); } },
  binary: { writable: true, value(this: Backend, op: string, a: never, b: never, out: never) { calls.push({ op }); cpuBackend.binary(op as never, a, b, out); } },
}) as Backend;
kiln.registerBackend(recording);
const device = 'cpu-recording';

describe('linear: bias in the GEMM epilogue', () => {
  it('one matmul carries the bias (axis n); no separate add', () => {
    const x = kiln.randn([3, 5], { device, generator: new kiln.Generator(1) });
    const w = kiln.randn([4, 5], { device, generator: new kiln.Generator(2) });
    const b = kiln.randn([4], { device, generator: new kiln.Generator(3) });
    calls.length = 0;
    kiln.linear(x, w, b).dispose();
    expect(calls.map((c) => c.op)).toEqual(['matmul']);
    expect(calls[0]!.epilogue?.biasAxis).toBe('n');
    expect(calls[0]!.epilogue?.bias?.shape).toEqual([4]);
  });

  for (const [what, xShape] of [['1-D input', [5]], ['2-D input', [3, 5]], ['batched input', [2, 3, 5]], ['empty in_features', [3, 0]]] as const) {
    it(`${what}: values and gradients equal matmul + add`, async () => {
      const inF = xShape.at(-1)!;
      const g = new kiln.Generator(7);
      const x = kiln.randn([...xShape], { generator: g }).requiresGrad_();
      const w = kiln.randn([4, inF], { generator: g }).requiresGrad_();
      const base = kiln.randn([8], { generator: g }).requiresGrad_();
      const run = async (fused: boolean) => {
        const y = kiln.tidy(() => {
          const b = base.slice(0, 1, 8, 2); // a strided view: the epilogue reads it by stride
          return fused ? kiln.linear(x, w, b) : x.matmul(w.mT).add(b);
        });
        kiln.tidy(() => y.mul(kiln.arange(1, y.numel() + 1, 1, { dtype: 'float32' }).reshape([...y.shape])).sum().backward());
        const out = [Array.from(await y.toArray()), ...(await Promise.all([x, w, base].map(async (t) => Array.from(await t.grad!.toArray()))))];
        for (const t of [x, w, base]) { t.grad!.dispose(); t.grad = null; }
        y.dispose();
        return out;
      };
      const fused = await run(true);
      const unfused = await run(false);
      fused.forEach((v, i) => expectClose(v, unfused[i]!, { rtol: 2.4e-7, atol: 1e-7 }, ['output', 'dx', 'dw', 'dbias'][i]));
    });
  }
});
