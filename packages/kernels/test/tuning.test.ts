// The tuning table on adapter facts (synthetic AdapterInfo: no GPU needed),
// the strategy option / KILN_KERNEL_STRATEGY, and that switching the class
// on a live backend really changes the kernels dispatched.
import { describe, expect, it } from 'vitest';
import { BackendError } from '@kiln/core';
import type { AdapterInfo } from '../src/device.js';
import { chooseTuning, convIm2col, convWeightGemm, parseStrategy, requestedStrategy, TUNING_TABLE, winogradTile } from '../src/tuning.js';
import { backend, free, gpuDescribe, outPair, pair } from './helpers.js';

const LIMITS = { maxComputeWorkgroupStorageSize: 32768, maxComputeInvocationsPerWorkgroup: 1024 };
const adapter = (over: Partial<AdapterInfo>): AdapterInfo => ({
  vendor: '', architecture: '', device: '', description: '', runtime: 'node-dawn', features: ['subgroups'], limits: LIMITS, ...over,
});
const lavapipe = adapter({ vendor: 'mesa', architecture: 'llvm', description: 'llvmpipe (LLVM 15.0.7, 256 bits)', subgroupMinSize: 8, subgroupMaxSize: 8 });
const nvidia = adapter({ vendor: 'nvidia', architecture: 'hopper', description: 'NVIDIA H200', subgroupMinSize: 32, subgroupMaxSize: 32 });
const tiny = adapter({ vendor: 'acme', limits: { maxComputeWorkgroupStorageSize: 4096, maxComputeInvocationsPerWorkgroup: 128 } });

describe('tuning table', () => {
  it("'auto' picks the class from the adapter's facts", () => {
    expect(chooseTuning(lavapipe)).toMatchObject({ strategy: 'cpu-like', entry: 'cpu-emulated', gemm: 'register', subgroupSize: 8, im2col: true });
    expect(chooseTuning(nvidia)).toMatchObject({ strategy: 'gpu', entry: 'gpu', gemm: 'tiled', subgroupSize: 0, im2col: false });
  });

  it('a forced class gives any adapter that class\'s row', () => {
    expect(chooseTuning(lavapipe, 'gpu')).toEqual(chooseTuning(nvidia, 'gpu'));
    expect(chooseTuning(nvidia, 'cpu-like')).toMatchObject({ strategy: 'cpu-like', entry: 'cpu-like', gemm: 'register', subgroupSize: 32, im2col: true });
  });

  it('rows key on limits and subgroup sizes: too-small limits fall back, varying subgroup sizes disable subgroup kernels', () => {
    expect(chooseTuning(tiny)).toMatchObject({ strategy: 'gpu', entry: 'gpu-small-limits', gemm: 'register' });
    const varying = { ...lavapipe, subgroupMinSize: 4, subgroupMaxSize: 16 };
    const t = chooseTuning(varying);
    expect(t.subgroupSize).toBe(0);
    // im2col's route needs the subgroup GEMM, so it goes with it.
    expect(convIm2col(t, [1, 64, 56, 56])).toBe(false);
  });

  it('im2col only where one image\'s output fills a GEMM block\'s columns (4S); smaller outputs take the direct kernel', () => {
    const t = chooseTuning(lavapipe);
    const S = t.subgroupSize;
    expect(S).toBeGreaterThan(0);
    expect(convIm2col(t, [1, 64, 56, 56])).toBe(true);
    expect(convIm2col(t, [32, 512, 1, 1])).toBe(false);
    expect(convIm2col(t, [8, 256, 2, 2])).toBe(false);
    expect(convIm2col(t, [1, 64, 1, 4 * S])).toBe(true);
    expect(convIm2col(t, [1, 64, 1, 4 * S - 1])).toBe(false);
  });

  it('the weight gradient runs as im2col + one GEMM on the CPU-like rows for outputs of at most 4 pixels; the GPU rows keep the kernel', () => {
    const t = chooseTuning(lavapipe);
    expect([convWeightGemm(t, [32, 256, 2, 2]), convWeightGemm(t, [32, 512, 1, 1]), convWeightGemm(t, [32, 128, 4, 4])]).toEqual([true, true, false]);
    expect(convWeightGemm(chooseTuning(nvidia), [32, 256, 2, 2])).toBe(false);
  });

  it('Winograd only where its tiles compute fewer products than 9 per output pixel: F2 on 2x2 maps, none on 1x1', () => {
    const p = { stride: [1, 1], dilation: [1, 1], groups: 1 };
    const w = [256, 256, 3, 3];
    const tile = (t: ReturnType<typeof chooseTuning>, n: number, hw: number) => winogradTile(t, [n, 256, hw, hw], w, [n, 256, hw, hw], p, 'forward');
    const cpuLike = chooseTuning(lavapipe);
    const gpu = chooseTuning(nvidia);
    expect([tile(cpuLike, 32, 8), tile(cpuLike, 32, 4), tile(cpuLike, 32, 2), tile(cpuLike, 32, 1)]).toEqual([4, 4, 2, 0]);
    expect([tile(gpu, 32, 8), tile(gpu, 32, 4), tile(gpu, 64, 2), tile(gpu, 256, 1)]).toEqual([4, 2, 2, 0]);
    // ResNet18 at 224x224, batch 1: layer3 (14x14) F4, layer4 (7x7, 4 F4 tiles) F2, as before.
    expect([tile(cpuLike, 1, 14), tile(cpuLike, 1, 7)]).toEqual([4, 2]);
  });

  it('every class ends in a row that matches any adapter', () => {
    for (const cls of ['cpu-like', 'gpu'] as const) {
      const last = TUNING_TABLE.filter((r) => r.strategy === cls).at(-1)!;
      expect(last.match).toEqual({});
    }
  });

  it('KILN_KERNEL_STRATEGY: gpu | cpu-like | auto, default auto; anything else is a BackendError naming the values', () => {
    expect(parseStrategy(undefined)).toBe('auto');
    expect(parseStrategy('gpu')).toBe('gpu');
    expect(parseStrategy('GPU')).toBeNull();
    const saved = process.env.KILN_KERNEL_STRATEGY;
    try {
      process.env.KILN_KERNEL_STRATEGY = 'cpu-like';
      expect(requestedStrategy()).toBe('cpu-like');
      expect(requestedStrategy('gpu')).toBe('gpu');
      process.env.KILN_KERNEL_STRATEGY = 'fast';
      expect(() => requestedStrategy()).toThrow(BackendError);
      expect(() => requestedStrategy()).toThrow(/gpu, cpu-like, auto; got 'fast' \(KILN_KERNEL_STRATEGY\)/);
    } finally {
      if (saved === undefined) delete process.env.KILN_KERNEL_STRATEGY;
      else process.env.KILN_KERNEL_STRATEGY = saved;
    }
  });
});

gpuDescribe('setStrategy on a live backend', () => {
  it("switches the conv route and GEMM family, and restores ('gpu': direct conv, tiled GEMM)", async () => {
    const be = backend();
    const before = be.tuning.strategy;
    const x = pair('float32', [1, 8, 6, 6]);
    const w = pair('float32', [8, 8, 3, 3]);
    const o = outPair('float32', [1, 8, 6, 6]);
    const p = { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 } as never;
    try {
      const kernels = async () => (await be.profile(() => be.conv2d(x.g, w.g, o.g, p))).map((k) => k.kernel).sort();
      const gpuT = be.setStrategy('gpu');
      expect(gpuT.strategy).toBe('gpu');
      expect(be.gemm).toBe('tiled');
      expect(await kernels()).toEqual(['conv2d']);
      const cpuT = be.setStrategy('cpu-like');
      expect(be.gemm).toBe('register');
      expect(await kernels()).toEqual(cpuT.im2col ? ['im2col', 'matmul'] : ['conv2d']);
    } finally {
      be.setStrategy(before);
      free(x, w, o);
    }
    expect(be.tuning.strategy).toBe(before);
  });
});
