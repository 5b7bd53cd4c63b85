// Does a peer measured just before Kiln slow Kiln's next case? In the gemm
// suite each Kiln case follows the previous size's TF.js and PyTorch timings;
// the quant suite's fp32 GEMM follows none. Per round: Kiln's 1024³ runner
// (the bench's: randn inputs, matmul under tidy, sync; warm-up + 6 runs)
// after a 2 s pause, right after PyTorch timed its 512³ GEMM, and right after
// TF.js WebGPU timed its 512³ GEMM; with the CPU time the PyTorch process
// burned while Kiln was being timed (its threads may spin after a call).
// Also: this process's CPU time over 1 s of doing nothing (a busy Dawn poll
// left pending by a peer would show as ~1000 ms), before and after each peer.
// A measurement, not a test.
//   npx vitest run -c benchmarks/probes/vitest.config.ts gemm-neighbours
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { it } from 'vitest';
import * as kiln from '@kiln/core';
import { initWebGPU } from '@kiln/kernels';
import { dawnGpu } from '../src/env.js';
import { TfjsPeer } from '../src/peers/tfjs.js';
import { TorchPeer } from '../src/peers/torch.js';
import { FULL_POLICY, timeRuns } from '../src/timing.js';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** utime + stime of a process in ms (clock ticks of 10 ms). */
const procCpuMs = (pid: number) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
};

/** This process's CPU ms over `ms` of idling. */
const idleCpu = async (label: string, ms = 1000) => {
  const c0 = process.cpuUsage();
  await sleep(ms);
  const cu = process.cpuUsage(c0);
  console.log(JSON.stringify({ label: `idle ${ms} ms: ${label}`, cpuMs: Math.round((cu.user + cu.system) / 1000) }));
};

it('gemm 1024³ after the peers', async () => {
  const backend = await initWebGPU();
  await idleCpu('Kiln only');
  const torch = await TorchPeer.create(process.env.KILN_PYTHON ?? '/usr/bin/python3');
  const torchPid = (torch as unknown as { proc: { pid: number } }).proc.pid;
  await idleCpu('PyTorch peer started');
  const tfjs = await TfjsPeer.create(await dawnGpu(backend));
  await idleCpu('TF.js WebGPU peer created');
  const a = kiln.randn([1024, 1024], { device: 'webgpu' });
  const b = kiln.randn([1024, 1024], { device: 'webgpu' });
  const kilnTime = async (label: string) => {
    const t0 = procCpuMs(torchPid);
    const c0 = process.cpuUsage();
    const wall: number[] = [];
    for (let i = -1; i < 6; i++) {
      const t = performance.now();
      kiln.tidy(() => { a.matmul(b); });
      await backend.sync();
      if (i >= 0) wall.push(performance.now() - t);
    }
    const cu = process.cpuUsage(c0);
    console.log(JSON.stringify({
      label, kilnMs: Number(median(wall).toFixed(1)), firstMs: Number(wall[0]!.toFixed(1)), kilnCpuHalfMsPerRun: Number(((cu.user + cu.system) / 1000 / 2 / 7).toFixed(1)),
      torchCpuMsMeanwhile: procCpuMs(torchPid) - t0, load: Number(loadavg()[0]!.toFixed(2)),
    }));
  };
  for (let r = 0; r < Number(process.env.KILN_PROBE_ROUNDS ?? 3); r++) {
    await sleep(2000);
    await kilnTime('after a 2 s pause');
    await torch.time({ kind: 'gemm', n: 512 }, FULL_POLICY);
    if (r === 0) await idleCpu('after PyTorch 512³');
    await torch.time({ kind: 'gemm', n: 512 }, FULL_POLICY);
    await kilnTime('right after PyTorch 512³');
    const tf = tfjs.gemm(512);
    await timeRuns(() => tf.run(), FULL_POLICY);
    if (r === 0) {
      await idleCpu('after TF.js 512³');
      await timeRuns(() => tf.run(), FULL_POLICY);
    }
    tf.dispose();
    await kilnTime('right after TF.js 512³');
    if (r === 0) await idleCpu('after TF.js and Kiln GEMMs');
  }
  a.dispose();
  b.dispose();
  torch.close();
});
