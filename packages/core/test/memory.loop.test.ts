// A training loop must not leak: 100 forward+backward+SGD steps of a small
// MLP keep memory() flat (live tensors, bytes in use, and on a pooled
// backend no new buffers once warm), whether the step cleans up with tidy,
// with explicit dispose() calls, or with `using`. Runs on every backend.
import { afterAll, expect, it } from 'vitest';
import * as kiln from '@kiln/core';
import type { Tensor } from '@kiln/core';
import { describeBackends } from '@kiln/test-helpers';

const STEPS = 100;
/** Steps before the baseline: pools and caches fill during the first few. */
const WARMUP = 5;
const LR = 0.1;
const ran = new Map<string, number>();
afterAll(() => console.log(`memory loop: ${[...ran].map(([b, n]) => `${n} loops of ${STEPS} steps on ${b}`).join(', ')}; numTensors and bytesInUse exact, buffersAllocated flat (pooled backends) after ${WARMUP} warm-up steps`));

interface Mlp {
  x: Tensor;
  y: Tensor;
  params: Tensor[];
}

function makeMlp(device: string): Mlp {
  // tidy: the unscaled randn temporaries must not outlive this (a leak here
  // would be collected later by the FinalizationRegistry, mid-measurement).
  return kiln.tidy(() => {
    const g = new kiln.Generator(11);
    const x = kiln.randn([32, 8], { device, generator: g });
    const y = kiln.randint(0, 3, [32], { device, generator: g });
    const params = [
      kiln.randn([8, 16], { device, generator: g }).mul(0.3),
      kiln.zeros([16], { device }),
      kiln.randn([16, 3], { device, generator: g }).mul(0.3),
      kiln.zeros([3], { device }),
    ].map((p) => p.requiresGrad_());
    return { x, y, params };
  });
}

function sgd(params: Tensor[]): void {
  kiln.noGrad(() => {
    for (const p of params) {
      const step = p.grad!.mul(LR);
      p.sub_(step);
      step.dispose();
      p.grad!.zero_();
    }
  });
}

/** One step inside tidy. */
function stepTidy({ x, y, params: [w1, b1, w2, b2] }: Mlp): Tensor {
  return kiln.tidy(() => {
    const logp = x.matmul(w1!).add(b1!).relu().matmul(w2!).add(b2!).logSoftmax(1);
    const loss = logp.gather(1, y.unsqueeze(1)).mean().neg();
    loss.backward();
    sgd([w1!, b1!, w2!, b2!]);
    return loss.detach();
  });
}

/** The same step disposing every tensor it creates by hand. */
function stepDispose({ x, y, params: [w1, b1, w2, b2] }: Mlp): Tensor {
  const made: Tensor[] = [];
  const t = (v: Tensor) => (made.push(v), v);
  const h = t(t(t(x.matmul(w1!)).add(b1!)).relu());
  const logits = t(t(h.matmul(w2!)).add(b2!));
  const logp = t(logits.logSoftmax(1));
  const picked = t(logp.gather(1, t(t(y.unsqueeze(1)))));
  const loss = t(t(picked.mean()).neg());
  loss.backward();
  sgd([w1!, b1!, w2!, b2!]);
  const out = loss.detach();
  for (const v of made) v.dispose();
  return out;
}

/** The same step with `using` declarations. */
function stepUsing({ x, y, params: [w1, b1, w2, b2] }: Mlp): Tensor {
  using a = x.matmul(w1!);
  using b = a.add(b1!);
  using h = b.relu();
  using c = h.matmul(w2!);
  using logits = c.add(b2!);
  using logp = logits.logSoftmax(1);
  using idx = y.unsqueeze(1);
  using picked = logp.gather(1, idx);
  using mean = picked.mean();
  using loss = mean.neg();
  loss.backward();
  sgd([w1!, b1!, w2!, b2!]);
  return loss.detach();
}

await describeBackends('memory stays flat over a training loop', (device) => {
  for (const [style, step] of [['tidy', stepTidy], ['dispose', stepDispose], ['using', stepUsing]] as const) {
    it(`${STEPS} MLP steps with ${style}`, async () => {
      ran.set(device, (ran.get(device) ?? 0) + 1);
      const mlp = makeMlp(device);
      let baseline: kiln.MemoryInfo | null = null;
      let first = NaN;
      let last = NaN;
      for (let i = 0; i < STEPS; i++) {
        const loss = step(mlp);
        // Reading the loss syncs the queue, as a real loop logging progress does.
        const value = await loss.item();
        loss.dispose();
        if (i === 0) first = value;
        last = value;
        if (i === WARMUP - 1) baseline = kiln.memory(device);
        if (i >= WARMUP && (i % 25 === 0 || i === STEPS - 1)) {
          const now = kiln.memory(device);
          expect(now.numTensors, `live tensors at step ${i}`).toBe(baseline!.numTensors);
          expect(now.bytesInUse, `bytes in use at step ${i}`).toBe(baseline!.bytesInUse);
          // The cpu backend allocates host arrays for the garbage collector (it
          // has no pool); a pooled backend must reuse its buffers once warm.
          if (device !== 'cpu') expect(now.buffersAllocated, `buffers allocated at step ${i}`).toBe(baseline!.buffersAllocated);
        }
      }
      expect(last, 'the loop trains').toBeLessThan(first);
      for (const p of mlp.params) p.grad?.dispose();
      for (const t of [mlp.x, mlp.y, ...mlp.params]) t.dispose();
    });
  }
});
