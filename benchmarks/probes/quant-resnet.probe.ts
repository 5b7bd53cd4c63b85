// ResNet18 eval (batch 1) wall time: float32 Kiln vs the statically
// quantized model with its convs on the im2col + int8 GEMM route and on the
// fused int8 conv (quantizedConvOverride), in interleaved rounds so load
// drift on a shared machine hits all three alike. A measurement, not a test.
//   npx vitest run -c benchmarks/probes/vitest.config.ts quant-resnet
import { cpus, loadavg } from 'node:os';
import { it } from 'vitest';
import * as kiln from '@kiln/core';
import { initWebGPU } from '@kiln/kernels';
import { quantization } from '@kiln/nn';
import { quantizableResnet18, resnet18 } from '@kiln/resnet';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

it('resnet18 eval N=1: fp32 vs int8 (im2col) vs int8 (fused conv)', async () => {
  await initWebGPU();
  const float = resnet18({ device: 'webgpu' }).eval();
  const q = quantizableResnet18({ device: 'webgpu' });
  q.loadStateDict(float.stateDict());
  q.eval().fuseModel();
  const prepared = quantization.prepare(q, { inplace: true });
  kiln.tidy(() => { prepared.call(kiln.randn([2, 3, 224, 224], { device: 'webgpu' })); });
  const int8 = await quantization.convert(prepared, { inplace: true });
  const x = kiln.randn([1, 3, 224, 224], { device: 'webgpu' });
  const variants: [string, () => kiln.Tensor, 'im2col' | 'fused' | undefined][] = [
    ['fp32', () => float.call(x), undefined],
    ['int8 im2col', () => int8.call(x), 'im2col'],
    ['int8 fused', () => int8.call(x), 'fused'],
  ];
  const times = new Map<string, number[]>(variants.map(([n]) => [n, []]));
  const rounds = Number(process.env.KILN_PROBE_ROUNDS ?? 5);
  const load0 = loadavg();
  for (let r = -1; r < rounds; r++) {
    for (const [name, run, path] of variants) {
      // 'fused' is the default route.
      if (path === 'im2col') kiln.quantizedConvOverride.path = path;
      else delete kiln.quantizedConvOverride.path;
      const t0 = performance.now();
      const y = kiln.noGrad(run);
      await y.toArray();
      const ms = performance.now() - t0;
      y.dispose();
      if (r >= 0) times.get(name)!.push(ms);
    }
  }
  delete kiln.quantizedConvOverride.path;
  const load1 = loadavg();
  const med = Object.fromEntries([...times].map(([n, t]) => [n, Number(median(t).toFixed(1))]));
  console.log(JSON.stringify({
    probe: 'quant-resnet', batch: 1, rounds, medianMs: med,
    int8OverFp32: { im2col: Number((med['int8 im2col']! / med.fp32!).toFixed(2)), fused: Number((med['int8 fused']! / med.fp32!).toFixed(2)) },
    loadavg: { start: load0.map((v) => Number(v.toFixed(2))), end: load1.map((v) => Number(v.toFixed(2))) }, cpus: cpus().length,
    allMs: Object.fromEntries([...times].map(([n, t]) => [n, t.map((v) => Math.round(v))])),
  }));
  float.dispose();
  int8.dispose();
});
