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
    let denseMs: number | null = null;
    for (const v of variants) {
      const name = `resnet18 eval N=${batch} ${v.name}`;
      if (outOfTime(bench, 'prune', name)) continue;
      const params = paramCount(v.model);
      const line = await measureCase(bench, {
        suite: 'prune',
        name,
        // The shrunk models do fewer FLOPs; GFLOP/s is only meaningful for the full-size ones.
        flop: v.check === undefined ? RESNET18_FLOP_PER_IMAGE * batch : undefined,
        kiln: () => {
          const x = randn([batch, 3, 224, 224], { device: 'webgpu' });
          return kilnRunner(bench.kiln!, [x], () => noGrad(() => v.model.call(x)));
        },
        extra: {
          parameters: params,
          bytes: params * 4,
          ...(v.check !== undefined ? { maxAbsDiffVsMasked: sig(v.check) } : {}),
        },
      });
      const ms = typeof line?.ms === 'number' ? line.ms : null;
      if (v.name === 'dense') denseMs = ms;
      else if (ms !== null && denseMs !== null) {
        const speedup = sig(denseMs / ms);
        bench.reporter.emit({ suite: 'prune', case: `${name} vs dense`, speedupVsDense: speedup, ms, denseMs });
        log(`prune: ${name}: ${speedup}x dense`);
      }
    }
  }
  for (const v of variants) {
    v.model.releaseFolded();
    v.model.dispose();
  }
}
