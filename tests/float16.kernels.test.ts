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
// broadcast, scalar and in-place operands, where, comparisons), batch norm
// (training and eval, forward and backward: float16 activations, float32
// statistics and parameter gradients, those compared bit for bit too) and
// pooling (max, avg, adaptive avg and their backwards). PyTorch parity of the same float16
// ops is tests/amp.float16.parity.test.ts. On WebGPU the float16 GEMM,
// the 1x1 and im2col/direct convs, elementwise ops, batch norm and pooling allocate no float32 stand-ins (peak bytes).
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
    // Contiguous outputs take one thread per word: a slice starting and ending inside a word keeps the neighbours' halves.
    ['copy_ into elements 3..8 of 15 (both end words half-written)', [[15], [6]], ([a, b]) => {
      const d = a!.clone();
      d.narrow(0, 3, 6).copy_(b!);
      return d;
    }],
    ['float32 copy_ into elements 1..9 of 12', [[12], [9]], ([a, b]) => {
      const d = a!.clone();
      d.narrow(0, 1, 9).copy_(b!.to('float32'));
      return d;
    }],
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

  /** Float32 gradients (of float32 parameters) agree bit for bit. */
  async function expectSame(got: Tensor, want: Tensor, what: string): Promise<void> {
    expect(got.dtype, `${what} dtype`).toBe('float32');
    const [a, b] = [await got.toArray(), await want.toArray()];
    for (let i = 0; i < b.length; i++) {
      if (a[i] !== b[i]) throw new Error(`${what}: element ${i} of ${b.length} is ${a[i]}, float32 gives ${b[i]}`);
    }
  }

  // Batch norm (wgsl/norm.ts `half`): float16 x, y, dy, dx in place; statistics, weight and bias float32 (as
  // PyTorch's half batch norm: float32 statistics and accumulation). 2x5x7x3: S = 21 and N*C*S odd (half-used last word).
  test('batch norm training 2x5x7x3: output, running stats, input gradient (float16) and weight/bias gradients (float32)', async () => {
    const x = pair([2, 5, 7, 3], device, 30, 2);
    const g = pair([2, 5, 7, 3], device, 31);
    const w0 = pair([5], device, 32);
    const b0 = pair([5], device, 33);
    const run = (xx: Tensor, gg: Tensor) => {
      const xi = xx.detach().requiresGrad_();
      const w = w0.f.detach().requiresGrad_();
      const b = b0.f.detach().requiresGrad_();
      const rm = kiln.zeros([5], { device });
      const rv = kiln.ones([5], { device });
      const y = kiln.batchNorm(xi, rm, rv, { weight: w, bias: b, training: true });
      y.backward(gg);
      return { y, dx: xi.grad!, dw: w.grad!, db: b.grad!, rm, rv };
    };
    const h = run(x.h, g.h);
    const f = run(x.f, g.f);
    await expectRounded(h.y, f.y, 'batch norm output');
    await expectRounded(h.dx, f.dx, 'batch norm input gradient');
    await expectSame(h.dw, f.dw, 'batch norm weight gradient');
    await expectSame(h.db, f.db, 'batch norm bias gradient');
    await expectSame(h.rm, f.rm, 'running mean');
    await expectSame(h.rv, f.rv, 'running var');
  });

  test('batch norm eval 3x4x5x5 (fused channel affine) and its input gradient', async () => {
    const x = pair([3, 4, 5, 5], device, 34);
    const g = pair([3, 4, 5, 5], device, 35);
    const rm = pair([4], device, 36).f;
    const rv = pair([4], device, 37).f.abs().add(0.5);
    const w = pair([4], device, 38).f;
    const run = (xx: Tensor, gg: Tensor) => {
      const xi = xx.detach().requiresGrad_();
      const y = kiln.batchNorm(xi, rm, rv, { weight: w, training: false });
      y.backward(gg);
      return [y, xi.grad!];
    };
    const [hy, hdx] = run(x.h, g.h);
    const [fy, fdx] = run(x.f, g.f);
    await expectRounded(hy!, fy!, 'eval batch norm output');
    await expectRounded(hdx!, fdx!, 'eval batch norm input gradient');
  });

  // Pooling (wgsl/pool.ts `half`): float16 x/y and dy/dx in place, f32 sums, one rounding.
  const poolCases: [string, number[], (x: Tensor) => Tensor][] = [
    ['max 3x3 stride 2 pad 1 of 2x3x9x9 (ResNet stem)', [2, 3, 9, 9], (x) => kiln.maxPool2d(x, 3, { stride: 2, padding: 1 })],
    ['max 2x2 dilation 2 ceil mode of 1x3x7x7', [1, 3, 7, 7], (x) => kiln.maxPool2d(x, 2, { dilation: 2, ceilMode: true })],
    ['avg 3x3 stride 2 pad 1 (padding counted) of 2x3x9x9', [2, 3, 9, 9], (x) => kiln.avgPool2d(x, 3, { stride: 2, padding: 1 })],
    ['avg 3x3 stride 1 pad 1 without padding in the divisor, odd view offset', [1, 3, 8, 7], (x) => kiln.avgPool2d(x.narrow(3, 1, 5), 3, { stride: 1, padding: 1, countIncludePad: false })],
    ['adaptive avg 7x5 -> 3x2 of 2x3x7x5', [2, 3, 7, 5], (x) => kiln.adaptiveAvgPool2d(x, [3, 2])],
    ['adaptive avg to 1x1 of 2x5x7x7 (ResNet head)', [2, 5, 7, 7], (x) => kiln.adaptiveAvgPool2d(x, 1)],
  ];
  for (const [name, shape, f] of poolCases) {
    test(`pooling ${name}: forward and input gradient`, async () => {
      const x = pair(shape, device, 40);
      const run = (xx: Tensor, half: boolean) => {
        const xi = xx.detach().requiresGrad_();
        const y = f(xi);
        const g = pair([...y.shape], device, 41);
        y.backward(half ? g.h : g.f);
        return [y, xi.grad!];
      };
      const [hy, hdx] = run(x.h, true);
      const [fy, fdx] = run(x.f, false);
      await expectRounded(hy!, fy!, `${name} output`);
      await expectRounded(hdx!, fdx!, `${name} input gradient`);
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

    test('float16 copies and in-place writes take no float32 stage (peak bytes: the result only), bit-exact', async () => {
      // 64 x 64 float16 = 8192 bytes; a float32 stage of the same shape would be 16384 more.
      const p = pair([64, 64], device, 21);
      const grownBy = (f: () => Tensor): [Tensor, number] => {
        kiln.resetPeakMemoryStats(device);
        const before = kiln.memory(device).peakBytesInUse;
        const t = f();
        return [t, kiln.memory(device).peakBytesInUse - before];
      };
      // float16 -> float16, contiguous and transposed (a strided read, halves of one word from two rows).
      const [c, cGrown] = grownBy(() => p.h.clone());
      expect(cGrown, 'clone').toBe(8192);
      await expectRounded(c, p.f, 'clone');
      const [t, tGrown] = grownBy(() => p.h.transpose(0, 1).contiguous());
      expect(tGrown, 'transposed contiguous()').toBe(8192);
      const ft = p.f.transpose(0, 1).contiguous();
      await expectRounded(t, ft, 'transposed contiguous()');
      // relu_ under autograd computes its result out of place and writes it back: the result is the only new buffer.
      const leaf = p.h.detach().requiresGrad_();
      const h = leaf.mul(1);
      const [r, rGrown] = grownBy(() => h.relu_());
      expect(rGrown, 'relu_ under autograd').toBe(8192);
      const fr = p.f.relu();
      await expectRounded(r, fr, 'relu_');
      for (const x of [c, t, ft, h, leaf, fr, p.h, p.f]) x.dispose();
    });

    test('float16 batch norm and pooling allocate no float32 stand-ins (peak bytes: the outputs and the float32 [C] statistics)', async () => {
      // 1 x 16 x 32 x 32 float16 = 32768 bytes; a float32 stand-in of x alone would be 65536.
      const x = pair([1, 16, 32, 32], device, 19);
      const rm = kiln.zeros([16], { device });
      const rv = kiln.ones([16], { device });
      kiln.resetPeakMemoryStats(device);
      const before = kiln.memory(device).peakBytesInUse;
      const y = kiln.batchNorm(x.h, rm, rv, { training: true });
      // The float16 output plus a few [16] float32 statistics (mean, variance, 1/std, shift: 64 bytes each, bucketed).
      expect(kiln.memory(device).peakBytesInUse - before, 'batch norm').toBeLessThan(32768 + 4096);
      kiln.resetPeakMemoryStats(device);
      const before2 = kiln.memory(device).peakBytesInUse;
      const p = kiln.maxPool2d(y, 3, { stride: 2, padding: 1 });
      // Output 16 x 16 x 16 float16 = 8192 bytes plus its int32 indices (16384 bytes).
      expect(kiln.memory(device).peakBytesInUse - before2, 'max pool').toBe(8192 + 16384);
      kiln.resetPeakMemoryStats(device);
      const before3 = kiln.memory(device).peakBytesInUse;
      const a = kiln.avgPool2d(y, 2);
      // Output 16 x 16 x 16 float16 = 8192 bytes.
      expect(kiln.memory(device).peakBytesInUse - before3, 'avg pool').toBe(8192);
      for (const t of [y, p, a]) t.dispose();
    });
  }
}, { strategies: true });
