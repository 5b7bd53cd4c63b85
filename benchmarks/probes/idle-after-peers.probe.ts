// Does a CPU peer keep burning this process's CPU after its call returns
// (ONNX Runtime's intra-op threads spin-wait by default; TF.js WASM runs on
// the main thread)? Measures this process's CPU ms over 1 s of idling right
// after each peer's ResNet18 N=1 forward, and Kiln's forward right after it.
// A measurement, not a test.
//   npx vitest run -c benchmarks/probes/vitest.config.ts idle-after-peers
import { it } from 'vitest';
import * as kiln from '@kiln/core';
import { initWebGPU } from '@kiln/kernels';
import { OrtPeer } from '../src/peers/ort.js';
import { TfjsPeer } from '../src/peers/tfjs.js';
import { dawnGpu } from '../src/env.js';
import { KilnResNet18Eval } from '../src/resnet18.js';
import { inputBatch, loadAssets } from '../src/weights.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const idleCpu = async (label: string, ms: number) => {
  const c0 = process.cpuUsage();
  await sleep(ms);
  const cu = process.cpuUsage(c0);
  console.log(JSON.stringify({ label, idleMs: ms, cpuMs: Math.round((cu.user + cu.system) / 1000) }));
};

it('CPU burned while idle after each peer', async () => {
  const backend = await initWebGPU();
  const assets = loadAssets(process.env.KILN_PYTHON ?? '/usr/bin/python3');
  const model = new KilnResNet18Eval(assets, 'webgpu');
  const input = inputBatch(assets, 1);
  const x = kiln.fromArray(input.data, input.shape, { device: 'webgpu' });
  model.forward(x).dispose();
  await backend.sync();
  await idleCpu('after Kiln forward', 1000);
  const ort = await OrtPeer.create(assets);
  await ort.forward(1);
  for (const ms of [50, 200, 1000]) {
    await ort.forward(1);
    await idleCpu(`after ORT forward`, ms);
  }
  const wasm = await TfjsPeer.createWasm();
  const wm = wasm.resnet(assets);
  await wm.logits(1);
  await idleCpu('after TF.js WASM forward', 1000);
  const tf = await TfjsPeer.create(await dawnGpu(backend));
  const tm = tf.resnet(assets);
  await tm.logits(1);
  await idleCpu('after TF.js WebGPU forward', 1000);
  x.dispose();
  model.dispose();
  await ort.dispose();
});
