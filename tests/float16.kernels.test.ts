// Native float16 GEMM and conv kernels (wgsl/gemm.ts, wgsl/conv.ts `half`
// flags) on every backend and both WebGPU strategy classes. A float16 op
// must give exactly what the float32 op gives on the same (float16-valued)
// operands, rounded once to float16: the kernels read float16 words as
// their exact f32 values, accumulate in f32 in the float32 kernel's order
// and round each output once (nearest even). So the comparison is bit-exact
// (tolerance 0), on sizes that leave a packed word holding one valid half
// (odd element counts, odd view offsets), every GEMM load mode (scalar, vec4
// along k, vec4 along n, batched, transposed), the fused epilogue (bias,
// residual, ReLU), conv forward and both backwards on the 1x1-GEMM,
// im2col, direct and Winograd routes, and elementwise ops (strided,
// broadcast, scalar and in-place operands, where, comparisons). PyTorch parity of the same float16
// ops is tests/amp.float16.parity.test.ts. On WebGPU the float16 GEMM and
// the 1x1 and im2col/direct convs and elementwise ops allocate no float32 stand-ins (peak bytes).
import { afterAll, expect, it } from 'vitest';
import * as kiln from '@kiln/core';
import type { Tensor } from '@kiln/core';
import { describeEachBackend, webgpuStatus } from './helpers/env.js';

const webgpu = await webgpuStatus();
const ran = new Map<string, number>();
afterAll(() => console.log(`float16 kernels: ${[...ran].map(([b, n]) => `${n} cases on ${b}`).join(', ')} (bit-exact vs float32 rounded once)`));

/** float16-valued operands: randn rounded to float16, as float16 and as float32 (the same values). */
function pair(shape: number[], device: string, seed: number, scale = 1): { h: Tensor; f: Tensor } {
  const f0 = kiln.randn(shape, { device, generator: new kiln.Generator(seed) }).mul(scale);
  const h = f0.to('float16');
  const f = h.to('float32');
  f0.dispose();
  return { h, f };
}

/** `half` is float16 and bit-for-bit `full` (float32) rounded to float16. */
async function expectRounded(half: Tensor, full: Tensor, what: string): Promise<void> {
  expect(half.dtype, `${what} dtype`).toBe('float16');
  const want = full.to('float16');
  const [got, exp] = [await half.toArray(), await want.toArray()];
  want.dispose();
  expect(got.length, `${what} length`).toBe(exp.length);
  for (let i = 0; i < exp.length; i++) {
    if (got[i] !== exp[i]) throw new Error(`${what}: element ${i} of ${exp.length} is ${got[i]}, float32 rounded once gives ${exp[i]}`);
  }
}

describeEachBackend('float16 kernels', webgpu, (device, pass) => {
  const test = (name: string, fn: () => Promise<void>) => it(name, async () => {
    ran.set(pass, (ran.get(pass) ?? 0) + 1);
    await fn();
  });

  const matmulCases: [string, number[], number[], (a: Tensor, b: Tensor) => Tensor][] = [
    ['7x13 @ 13x5 (odd: scalar loads, last word half-used)', [7, 13], [13, 5], (a, b) => a.matmul(b)],
    ['9x16 @ 16x12 (vec4 along k and n, odd rows)', [9, 16], [16, 12], (a, b) => a.matmul(b)],
    ['batched 3x5x8 @ 3x8x6', [3, 5, 8], [3, 8, 6], (a, b) => a.matmul(b)],
    ['6x12 @ (10x12)^T (x @ W^T: B vec4 along k)', [6, 12], [10, 12], (a, b) => a.matmul(b.transpose(0, 1))],
    ['odd view offset and stride: 11x9 narrowed to columns 1..7, @ 7x3', [11, 9], [7, 3], (a, b) => a.narrow(1, 1, 7).matmul(b)],
  ];
  for (const [name, sa, sb, f] of matmulCases) {
    test(`matmul ${name}`, async () => {
      const a = pair(sa, device, 1);
      const b = pair(sb, device, 2);
      await expectRounded(f(a.h, b.h), f(a.f, b.f), 'matmul');
    });
  }

  test('linear with bias (GEMM bias epilogue), 5x19 -> 7', async () => {
    const x = pair([5, 19], device, 3);
    const w = pair([7, 19], device, 4, 0.3);
    const b = pair([7], device, 5, 0.1);
    await expectRounded(kiln.linear(x.h, w.h, b.h), kiln.linear(x.f, w.f, b.f), 'linear');
  });

  // [N, C, H, O, k, stride, padding]: 1x1 (GEMM), 3x3 stride 2 with K % 4 == 0 (im2col on cpu-like, direct on gpu),
  // 3x3 K % 4 != 0 (direct), 3x3 stride 1 with enough tiles for Winograd (float32 stand-ins there), 5x5 odd everything.
  const convCases: [string, number[]][] = [
    ['1x1 3x8x5x5 -> 5', [3, 8, 5, 5, 1, 1, 0]],
    ['3x3 stride 2 2x4x9x9 -> 6', [2, 4, 9, 6, 3, 2, 1]],
    ['3x3 pad 1 2x3x7x7 -> 5', [2, 3, 7, 5, 3, 1, 1]],
    ['3x3 pad 1 1x16x12x12 -> 16', [1, 16, 12, 16, 3, 1, 1]],
    ['5x5 pad 2 1x3x7x7 -> 3', [1, 3, 7, 3, 5, 1, 2]],
  ];
  for (const [name, [N, C, H, O, k, stride, padding]] of convCases) {
    test(`conv2d ${name}: forward with bias + residual + ReLU epilogue, input and weight gradients`, async () => {
      const x = pair([N!, C!, H!, H!], device, 6);
      const w = pair([O!, C!, k!, k!], device, 7, 0.3);
      const b = pair([O!], device, 8, 0.1);
      const OH = Math.floor((H! + 2 * padding! - k!) / stride!) + 1;
      const r = pair([N!, O!, OH, OH], device, 9);
      const g = pair([N!, O!, OH, OH], device, 10);
      const run = (xx: Tensor, ww: Tensor, bb: Tensor, rr: Tensor, gg: Tensor) => {
        // No input needs a gradient here, so the epilogue is fused into the kernel (core composes it otherwise).
        const fused = kiln.conv2d(xx, ww, bb, { stride, padding }, { residual: rr, relu: true });
        const xi = xx.detach().requiresGrad_();
        const wi = ww.detach().requiresGrad_();
        const y = kiln.conv2d(xi, wi, null, { stride, padding });
        y.backward(gg);
        return [fused, y, xi.grad!, wi.grad!];
      };
      const got = run(x.h, w.h, b.h, r.h, g.h);
      const want = run(x.f, w.f, b.f, r.f, g.f);
      const names = ['forward (fused epilogue)', 'forward', 'input gradient', 'weight gradient'];
      for (let i = 0; i < names.length; i++) await expectRounded(got[i]!, want[i]!, names[i]!);
    });
  }

  // Elementwise: float16 operands read in place, computed in f32, rounded once (wgsl/elementwise.ts).
  const ewCases: [string, number[][], (t: Tensor[]) => Tensor][] = [
    ['exp of 7x13 (odd count: last word half-used)', [[7, 13]], ([a]) => a!.exp()],
    ['sigmoid of a transposed 5x9 view (strided read)', [[5, 9]], ([a]) => a!.transpose(0, 1).sigmoid()],
    ['a * b with b broadcast over rows, 6x11', [[6, 11], [11]], ([a, b]) => a!.mul(b!)],
    ['a + 3 (scalar operand), 3x5', [[3, 5]], ([a]) => a!.add(3)],
    ['a / b at an odd view offset, 9x7 narrowed to columns 1..6', [[9, 7], [9, 6]], ([a, b]) => a!.narrow(1, 1, 6).div(b!)],
    ['where(a > b, a, b) of 13 elements', [[13], [13]], ([a, b]) => kiln.where(a!.gt(b!), a!, b!)],
    ['in place: a.add_(b) on 15 elements', [[15], [15]], ([a, b]) => a!.clone().add_(b!)],
  ];
  // Reductions: float16 read in place, f32 accumulation, one rounding (wgsl/reduction.ts), both strategies by size.
  ewCases.push(
    ['sum over dim 1 of 7x13 (one thread per output)', [[7, 13]], ([a]) => a!.sum(1)],
    ['mean of 3x301 over dim 1 (a workgroup per output)', [[3, 301]], ([a]) => a!.mean(1)],
    ['max over dim 0 of a transposed 5x9 view', [[5, 9]], ([a]) => a!.transpose(0, 1).amax(0)],
    ['sum of all 999 elements', [[999]], ([a]) => a!.sum()],
  );
  for (const [name, shapes, f] of ewCases) {
    test(`elementwise ${name}`, async () => {
      const ops = shapes.map((sh, i) => pair(sh, device, 20 + i));
      await expectRounded(f(ops.map((o) => o.h)), f(ops.map((o) => o.f)), 'elementwise');
    });
  }

  if (device === 'webgpu') {
    test('float16 GEMM and convs allocate no float32 stand-ins (peak bytes: the float16 output, and the float16 im2col panel)', async () => {
      const a = pair([64, 96], device, 11);
      const b = pair([96, 64], device, 12);
      const x = pair([1, 96, 8, 8], device, 13);
      const w = pair([64, 96, 1, 1], device, 14);
      for (const [what, f] of [['matmul', () => a.h.matmul(b.h)], ['1x1 conv2d', () => kiln.conv2d(x.h, w.h)]] as const) {
        kiln.resetPeakMemoryStats(device);
        const before = kiln.memory(device).peakBytesInUse;
        const y = f();
        const grown = kiln.memory(device).peakBytesInUse - before;
        // Output: 64 x 64 float16 = 8192 bytes; float32 stand-ins of the operands would add 4 bytes per element (> 40 KB).
        expect(grown, what).toBe(8192);
        y.dispose();
      }
      // 3x3 stride 2, 16 -> 32 channels at 16x16: output 32 x 8 x 8 float16 = 4096 bytes, plus (im2col route)
      // the float16 panel, 144 x 64 halves = 18432 bytes in a 20480-byte bucket; its float32 panel alone would be 36864.
      const x3 = pair([1, 16, 16, 16], device, 15);
      const w3 = pair([32, 16, 3, 3], device, 16);
      kiln.resetPeakMemoryStats(device);
      const before = kiln.memory(device).peakBytesInUse;
      const y3 = kiln.conv2d(x3.h, w3.h, null, { stride: 2, padding: 1 });
      expect(kiln.memory(device).peakBytesInUse - before, '3x3 stride 2 conv2d').toBeLessThanOrEqual(4096 + 20480);
      y3.dispose();
      // Elementwise: a + b of two 64 x 64 float16 tensors holds the 8192-byte output only.
      const p = pair([64, 64], device, 17);
      const q = pair([64, 64], device, 18);
      kiln.resetPeakMemoryStats(device);
      const before2 = kiln.memory(device).peakBytesInUse;
      const z = p.h.add(q.h);
      expect(kiln.memory(device).peakBytesInUse - before2, 'add').toBe(8192);
      z.dispose();
    });
  }
}, { strategies: true });
