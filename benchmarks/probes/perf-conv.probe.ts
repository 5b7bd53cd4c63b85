// ResNet18 (batch 1) conv timings: a measurement, not a test (see README.md here).
import type { Conv2dParams } from '@kiln/core';
import { it } from 'vitest';
import { backend, pair } from '../../packages/kernels/test/helpers.js';
import { convOverride } from '../../packages/kernels/src/ops/conv.js';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const P = (s: number, p: number): Conv2dParams => ({ stride: [s, s], padding: [p, p], dilation: [1, 1], groups: 1 });

/** [name, C, H, O, k, stride, pad, count in ResNet18] */
const SHAPES: [string, number, number, number, number, number, number, number][] = [
  ['conv1', 3, 224, 64, 7, 2, 3, 1],
  ['l1.3x3', 64, 56, 64, 3, 1, 1, 4],
  ['l2.3x3s2', 64, 56, 128, 3, 2, 1, 1],
  ['l2.3x3', 128, 28, 128, 3, 1, 1, 3],
  ['l2.ds', 64, 56, 128, 1, 2, 0, 1],
  ['l3.3x3s2', 128, 28, 256, 3, 2, 1, 1],
  ['l3.3x3', 256, 14, 256, 3, 1, 1, 3],
  ['l3.ds', 128, 28, 256, 1, 2, 0, 1],
  ['l4.3x3s2', 256, 14, 512, 3, 2, 1, 1],
  ['l4.3x3', 512, 7, 512, 3, 1, 1, 3],
  ['l4.ds', 256, 14, 512, 1, 2, 0, 1],
];

async function time(run: () => void, samples = 3): Promise<[number, number]> {
  const be = backend();
  run();
  await be.sync();
  const ts: number[] = [];
  const cs: number[] = [];
  for (let s = 0; s < samples; s++) {
    const t = performance.now();
    const c0 = process.cpuUsage();
    run();
    await be.sync();
    const cu = process.cpuUsage(c0);
    ts.push(performance.now() - t);
    cs.push((cu.user + cu.system) / 1000 / 2);
  }
  return [median(ts), median(cs)];
}

it('ResNet18 conv timings', async () => {
  const be = backend();
  const cfgs = JSON.parse(process.env.KILN_PERF_CFGS ?? '[{}]') as Record<string, unknown>[];
  const kinds = (process.env.KILN_PERF_KINDS ?? 'fwd,bwdIn,bwdW').split(',');
  const total: Record<string, [number, number]> = {};
  for (const [name, C, H, O, k, s, p, count] of SHAPES) {
    const OH = Math.floor((H + 2 * p - k) / s) + 1;
    const x = pair('float32', [1, C, H, H]);
    const w = pair('float32', [O, C, k, k]);
    const y = pair('float32', [1, O, OH, OH]);
    const flops = 2 * O * C * k * k * OH * OH;
    for (const c of cfgs) {
      Object.assign(convOverride, c);
      const runs: [string, () => void][] = [
        ['fwd', () => be.conv2d(x.g, w.g, y.g, P(s, p))],
        ['bwdIn', () => be.conv2dBackwardInput(y.g, w.g, x.g, P(s, p))],
        ['bwdW', () => be.conv2dBackwardWeight(x.g, y.g, w.g, P(s, p))],
      ];
      for (const [kind, run] of runs) {
        if (!kinds.includes(kind)) continue;
        const [ms, cpu] = await time(run);
        const key = `${kind} ${JSON.stringify(c)}`;
        const t = (total[key] ??= [0, 0]);
        t[0] += ms * count;
        t[1] += cpu * count;
        console.log(`[perf] ${name.padEnd(9)} ${kind.padEnd(5)} cfg=${JSON.stringify(c)} wall ${ms.toFixed(1)} ms cpu/2 ${cpu.toFixed(1)} ms ${(flops / cpu / 1e6).toFixed(2)} GFLOP/s(cpu)`);
      }
      for (const key of Object.keys(convOverride)) delete (convOverride as Record<string, unknown>)[key];
    }
    for (const v of [x, w, y]) be.release(v.g.storage);
  }
  for (const [key, [ms, cpu]] of Object.entries(total)) console.log(`[perf] TOTAL x count ${key}: wall ${ms.toFixed(0)} ms cpu/2 ${cpu.toFixed(0)} ms`);
}, 1_800_000);
