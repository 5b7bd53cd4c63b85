/**
 * Pruning on ResNet18 eval (WebGPU, BN folded, fused epilogues), batch 1
 * and 8: the dense model; the same model with 30% and 50% of each
 * BasicBlock's inner channels pruned and physically removed
 * (pruneInnerChannels + shrinkInnerChannels), with its speed-up over dense;
 * and the masked, unshrunk model (torch.nn.utils.prune's result: same size,
 * the masked weight re-derived only when weight_orig or weight_mask change).
 * Each line carries the parameter count and bytes of parameters. The shrunk
 * models' logits are checked against their masked models' before timing.
 */
import { noGrad, randn, type Tensor } from '@kiln/core';
import { skipInit } from '@kiln/nn';
import { pruneInnerChannels, resnet18, shrinkInnerChannels, type ResNet } from '@kiln/resnet';
import { kilnRunner, measureCase, outOfTime, type Bench } from '../bench.js';
import { RESNET18_FLOP_PER_IMAGE } from '../cases.js';
import { log } from '../report.js';

const sig = (x: number) => Number(x.toPrecision(3));
const paramCount = (m: ResNet) => m.parameters().reduce((n, p) => n + p.numel(), 0);

/** A copy of `dense` (its state dict) on WebGPU, in eval mode. */
function copyOf(dense: ResNet): ResNet {
  const m = skipInit(() => resnet18({ device: 'webgpu' }));
  const sd = dense.stateDict();
  m.loadStateDict(sd);
  for (const t of Object.values(sd)) t.dispose();
  return m.eval();
}

async function maxDiff(a: ResNet, b: ResNet, x: Tensor): Promise<number> {
  const [ya, yb] = noGrad(() => [a.call(x), b.call(x)]);
  const [va, vb] = [await ya.toArray(), await yb.toArray()];
  ya.dispose();
  yb.dispose();
  let d = 0;
  for (let i = 0; i < va.length; i++) d = Math.max(d, Math.abs(va[i]! - vb[i]!));
  return d;
}

const dense0 = (variants: { model: ResNet }[]) => variants[0]!.model;

export async function pruneSuite(bench: Bench): Promise<void> {
  if (!bench.kiln) {
    bench.reporter.emit({ suite: 'prune', case: '(suite)', error: `kiln webgpu unavailable: ${bench.kilnError}` });
    return;
  }
  const batches = bench.opts.quick ? [1] : [1, 8];
  const dense = resnet18({ device: 'webgpu' }).eval();
  const variants: { name: string; model: ResNet; check?: number }[] = [{ name: 'dense', model: dense }];
  const probe = randn([1, 3, 224, 224], { device: 'webgpu' });
  for (const amount of [0.3, 0.5]) {
    const masked = copyOf(dense);
    await pruneInnerChannels(masked, amount);
    const shrunk = copyOf(dense);
    await pruneInnerChannels(shrunk, amount);
    await shrinkInnerChannels(shrunk);
    variants.push({ name: `inner channels shrunk ${amount * 100}%`, model: shrunk, check: await maxDiff(shrunk, masked, probe) });
    if (amount === 0.3) variants.splice(1, 0, { name: 'masked 30% (unshrunk)', model: masked });
    else masked.dispose();
  }
  probe.dispose();

  for (const batch of batches) {
    for (const v of variants) {
      const name = `resnet18 eval N=${batch} ${v.name}`;
      if (outOfTime(bench, 'prune', name)) continue;
      const params = paramCount(v.model);
      await measureCase(bench, {
        suite: 'prune',
        name,
        // The shrunk models do fewer FLOPs; GFLOP/s is only meaningful for the full-size ones.
        flop: v.check === undefined ? RESNET18_FLOP_PER_IMAGE * batch : undefined,
        kiln: () => {
          const x = randn([batch, 3, 224, 224], { device: 'webgpu' });
          return kilnRunner(bench.kiln!, [x], () => noGrad(() => v.model.call(x)));
        },
        extra: { parameters: params, bytes: params * 4, ...(v.check !== undefined ? { maxAbsDiffVsMasked: sig(v.check) } : {}) },
      });
    }
    if (outOfTime(bench, 'prune', `resnet18 eval N=${batch} speed-ups`)) continue;
    // The machine is shared: speed-ups come from rounds that time every
    // variant back to back, so a load change hits all of them alike.
    const rounds = bench.opts.quick ? 3 : 5;
    const samples = new Map<string, number[]>(variants.map((v) => [v.name, []]));
    const x = randn([batch, 3, 224, 224], { device: 'webgpu' });
    for (let r = 0; r < rounds; r++) {
      for (const v of variants) {
        const t0 = performance.now();
        noGrad(() => v.model.call(x)).dispose();
        await bench.kiln.sync();
        samples.get(v.name)!.push(performance.now() - t0);
      }
    }
    x.dispose();
    const med = (a: number[]) => [...a].sort((p, q) => p - q)[a.length >> 1]!;
    const dense = med(samples.get('dense')!);
    for (const v of variants.slice(1)) {
      const ms = med(samples.get(v.name)!);
      const speedup = sig(dense / ms);
      bench.reporter.emit({ suite: 'prune', case: `resnet18 eval N=${batch} ${v.name} vs dense`, speedupVsDense: speedup, ms: sig(ms), denseMs: sig(dense), interleavedRounds: rounds, parameters: paramCount(v.model), parametersDense: paramCount(dense0(variants)) });
      log(`prune: N=${batch} ${v.name}: ${speedup}x dense`);
    }
  }
  for (const v of variants) {
    v.model.releaseFolded();
    v.model.dispose();
  }
}
