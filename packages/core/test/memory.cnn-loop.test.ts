// The CNN ops must not leak either: 30 training steps of a tiny conv net
// (conv2d -> batchNorm (training, running stats) -> relu -> maxPool2d ->
// adaptiveAvgPool2d -> linear -> crossEntropy, plus a dropout) keep memory()
// flat, cleaned up with tidy or with `using` alone. Runs on every backend.
import { afterAll, expect, it } from 'vitest';
import * as kiln from '@kiln/core';
import type { Tensor } from '@kiln/core';
import { describeBackends } from '@kiln/test-helpers';

const STEPS = 30;
const WARMUP = 3;
const LR = 0.05;
const ran = new Map<string, number>();
afterAll(() => console.log(`memory cnn loop: ${[...ran].map(([b, n]) => `${n} loops of ${STEPS} steps on ${b}`).join(', ')}; numTensors and bytesInUse exact, buffersAllocated flat (pooled backends) after ${WARMUP} warm-up steps`));

interface Net {
  x: Tensor;
  y: Tensor;
  params: Tensor[];
  runningMean: Tensor;
  runningVar: Tensor;
  dropGen: kiln.Generator;
}

function makeNet(device: string): Net {
  return kiln.tidy(() => {
    const g = new kiln.Generator(5);
    return {
      x: kiln.randn([4, 3, 8, 8], { device, generator: g }),
      y: kiln.randint(0, 5, [4], { device, generator: g }),
      params: [
        kiln.randn([6, 3, 3, 3], { device, generator: g }).mul(0.2), // conv weight
        kiln.zeros([6], { device }), // conv bias
        kiln.ones([6], { device }), // bn weight
        kiln.zeros([6], { device }), // bn bias
        kiln.randn([5, 6], { device, generator: g }).mul(0.3), // fc weight
        kiln.zeros([5], { device }), // fc bias
      ].map((p) => p.requiresGrad_()),
      runningMean: kiln.zeros([6], { device }),
      runningVar: kiln.ones([6], { device }),
      dropGen: new kiln.Generator(9),
    };
  });
}

function sgd(params: Tensor[]): void {
  kiln.noGrad(() => {
    for (const p of params) {
      using step = p.grad!.mul(LR);
      p.sub_(step);
      p.grad!.zero_();
    }
  });
}

function forwardUsing(net: Net): Tensor {
  const [cw, cb, bw, bb, fw, fb] = net.params;
  using c = kiln.conv2d(net.x, cw!, cb!, { padding: 1 });
  using n = kiln.batchNorm(c, net.runningMean, net.runningVar, { weight: bw, bias: bb, training: true });
  using r = n.relu();
  using p = kiln.maxPool2d(r, 2);
  using a = kiln.adaptiveAvgPool2d(p, 1);
  using f = a.flatten(1);
  using d = kiln.dropout(f, 0.2, true, net.dropGen);
  using logits = kiln.linear(d, fw!, fb!);
  using loss = kiln.crossEntropy(logits, net.y, { labelSmoothing: 0.1 });
  loss.backward();
  sgd(net.params);
  return loss.detach();
}

function stepTidy(net: Net): Tensor {
  return kiln.tidy(() => forwardUsing(net));
}

await describeBackends('memory stays flat over a CNN training loop', (device) => {
  for (const [style, step] of [['tidy', stepTidy], ['using', forwardUsing]] as const) {
    it(`${STEPS} conv-net steps with ${style}`, async () => {
      ran.set(device, (ran.get(device) ?? 0) + 1);
      const net = makeNet(device);
      let baseline: kiln.MemoryInfo | null = null;
      for (let i = 0; i < STEPS; i++) {
        const loss = step(net);
        expect(Number.isFinite(await loss.item()), `loss at step ${i}`).toBe(true);
        loss.dispose();
        if (i === WARMUP - 1) baseline = kiln.memory(device);
        if (i >= WARMUP && (i % 10 === 0 || i === STEPS - 1)) {
          const now = kiln.memory(device);
          expect(now.numTensors, `live tensors at step ${i}`).toBe(baseline!.numTensors);
          expect(now.bytesInUse, `bytes in use at step ${i}`).toBe(baseline!.bytesInUse);
          if (device !== 'cpu') expect(now.buffersAllocated, `buffers allocated at step ${i}`).toBe(baseline!.buffersAllocated);
        }
      }
      for (const p of net.params) p.grad?.dispose();
      for (const t of [net.x, net.y, net.runningMean, net.runningVar, ...net.params]) t.dispose();
    });
  }
});
