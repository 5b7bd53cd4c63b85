// float16 against PyTorch (tests/reference/gen_amp_float16.py) on every
// backend and both WebGPU kernel strategies (the native float16 GEMM, conv,
// elementwise and reduction kernels of each). Inputs are float16 values (cast with .to('float16'), exact);
// outputs are float16 and compared by value. Kiln computes float16 ops in
// float32 and rounds the result once (round to nearest even); the
// references are PyTorch's own half results where Debian's torch 1.13 runs
// half on the CPU (cast, add, mul, div, neg, sum), otherwise float64 on the
// float16 inputs rounded once to float16. Odd sizes (17x64x9, 3x300x5, 9x9
// images, 5x9 elementwise) leave packed words half used. Tolerances, from float16's
// epsilon (an ulp is at most 2^-10 of the value) and float32's (2^-24):
// - cast, add, mul, neg: exact (both sides round the same float32 value);
// - div, exp, tanh, sigmoid, relu, mean, sum: one float16 ulp (rtol 2^-10),
//   since WGSL/libm float32 results may sit on the other side of a float16
//   rounding boundary; sums add their float32 accumulation error;
// - matmul and conv (forward and both backwards): one float16 ulp plus the
//   float32 accumulation error of a K-term dot product of |terms| <= 16,
//   atol = K * 2^-24 * 16, K stated per case.
import { afterAll, expect, it } from 'vitest';
import * as kiln from '@kiln/core';
import type { Tensor } from '@kiln/core';
import { EXACT, expectClose, type Tolerance } from './helpers/compare.js';
import { describeEachBackend, webgpuStatus } from './helpers/env.js';
import { describeReference, type RefCase } from './helpers/reference.js';
import { upload } from './parity/table-case.js';

const webgpu = await webgpuStatus();
const ULP: Tolerance = { rtol: 2 ** -10, atol: 2 ** -24 };
const dotTol = (k: number): Tolerance => ({ rtol: 2 ** -10, atol: k * 2 ** -24 * 16 });

type Run = (x: Tensor[], c: RefCase) => { outs: Tensor[]; tols: Tolerance[] };
const one = (f: (x: Tensor[]) => Tensor, tol: Tolerance): Run => (x) => ({ outs: [f(x)], tols: [tol] });
const RUNS: Record<string, Run> = {
  cast: one(([x]) => x!, EXACT),
  add: one(([a, b]) => a!.add(b!), EXACT),
  mul: one(([a, b]) => a!.mul(b!), EXACT),
  neg: one(([a]) => a!.neg(), EXACT),
  div: one(([a, b]) => a!.div(b!), ULP),
  sum: one(([a]) => a!.sum(), { rtol: 2 ** -10, atol: 300 * 2 ** -24 * 4 }),
  mean: one(([a]) => a!.mean(), { rtol: 2 ** -10, atol: 200 * 2 ** -24 * 4 }),
  exp: one(([a]) => a!.exp(), ULP),
  tanh: one(([a]) => a!.tanh(), ULP),
  sigmoid: one(([a]) => a!.sigmoid(), ULP),
  relu: one(([a]) => a!.relu(), EXACT),
  matmul: (x) => ({ outs: [x[0]!.matmul(x[1]!)], tols: [dotTol(x[0]!.shape[1]!)] }),
  conv2d: ([x, w, b, gout], c) => {
    for (const t of [x!, w!, b!]) t.requiresGrad_();
    const { stride, padding } = c.args as { stride: number; padding: number };
    const y = kiln.conv2d(x!, w!, b!, { stride, padding });
    y.backward(gout!);
    const [N, C] = x!.shape as number[];
    const [O, , k] = w!.shape as number[];
    const spatial = y.shape[2]! * y.shape[3]!;
    return {
      outs: [y, x!.grad!, w!.grad!, b!.grad!],
      tols: [dotTol(C! * k! * k!), dotTol(O! * k! * k!), dotTol(N! * spatial), dotTol(N! * spatial)],
    };
  },
};

describeReference('float16 vs PyTorch', 'amp_float16', (ref) => {
  const ran = new Map<string, number>();
  afterAll(() => console.log(`float16 vs PyTorch: ${[...ran].map(([b, n]) => `${n} cases on ${b}`).join(', ')} (PyTorch ${ref.torch}); ` +
    `cast/add/mul/neg/relu exact, div/exp/tanh/sigmoid one float16 ulp (rtol 2^-10), matmul/conv rtol 2^-10 + atol K*2^-24*16`));
  it('every case has a Kiln mapping', () => {
    expect(ref.cases.length).toBe(18);
    for (const c of ref.cases) expect(RUNS[c.op], c.op).toBeDefined();
  });

  describeEachBackend('float16', webgpu, (device) => {
    for (const c of ref.cases) {
      it(`${c.name}: float16 result matches`, async () => {
        ran.set(device, (ran.get(device) ?? 0) + 1);
        const raw = c.inputs.map((r) => upload(ref, r, device));
        const halves = raw.map((t) => t.to('float16'));
        // The inputs are float16 values already: the cast is exact.
        for (let i = 0; i < raw.length; i++) if (c.op !== 'cast') expect(Array.from(await halves[i]!.toArray())).toEqual(Array.from(await raw[i]!.toArray()));
        const { outs, tols } = RUNS[c.op]!(halves, c);
        try {
          for (let i = 0; i < outs.length; i++) {
            expect(outs[i]!.dtype, `output ${i} dtype`).toBe('float16');
            expect([...outs[i]!.shape], `output ${i} shape`).toEqual(c.outputs[i]!.shape);
            expectClose(await outs[i]!.toArray(), ref.values(c.outputs[i]!), tols[i]!, `output ${i}`);
          }
        } finally {
          for (const t of [...raw, ...halves, ...outs]) t.dispose();
        }
      });
    }
  }, { strategies: true });
});
