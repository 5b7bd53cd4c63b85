// ResNet18 pruned as PyTorch prunes it (tests/reference/gen_prune.py), on
// every backend: globalUnstructured(L1Unstructured, 20%) over every conv of
// the calibrated seed-0 torchvision resnet18 gives PyTorch's masks; the
// pruned model's eval logits equal PyTorch's on the fused path (BN folded
// through the effective weight) and layer by layer; one SGD step of the
// pruned model gives PyTorch's loss, weight_orig gradients (zero where
// masked) and updated weights; after remove() the state dict is PyTorch's.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { join } from 'node:path';
import { memory, noGrad, tensor, type Tensor } from '@kiln/core';
import { Conv2d, CrossEntropyLoss, Module, optim, prune } from '@kiln/nn';
import { loadWeights, resnet18, type ResNet } from '@kiln/resnet';
import { describeEachBackend, expectClose, webgpuStatus } from '@kiln/test-helpers';
import { REFERENCE_CACHE_DIR } from '../scripts/reference-cache.mjs';
import { RESNET18_PTH, maxAbs, maxAbsDiff, report } from '../packages/resnet/test/model.helpers.js';
import { describePruneReference, strided, unpackBits } from './prune.helpers.js';

const webgpu = await webgpuStatus();
// Logits of a 1000-class head are O(1-10) and come from float32 sums over
// ~10^4 terms in another order than PyTorch's: measured within 2.2e-5 on
// both backends and both paths at 64x64; 2e-4 leaves a 10x margin.
const LOGITS_ATOL = 2e-4;
type Pruned = { weight: Tensor; weight_orig: Tensor; weight_mask: Tensor };

/** The seed-0 resnet18 from its .pth with gen_prune.py's BatchNorm calibration on top, in eval mode. */
async function calibratedResnet18(device: string): Promise<ResNet> {
  const model = resnet18({ device });
  await loadWeights(model, RESNET18_PTH);
  const r = await loadWeights(model, join(REFERENCE_CACHE_DIR, 'prune', 'bn_calibration.safetensors'), { strict: false });
  if (r.unexpectedKeys.length) throw new Error(`unexpected calibration keys ${r.unexpectedKeys.join(', ')}`);
  return model.eval();
}

describePruneReference('pruned resnet18 vs PyTorch', (ref) => {
  const global = ref.case('global');
  const tune = ref.case('finetune');
  const convNames = global.args.convs as string[];

  describeEachBackend('global 20% L1 over every conv', webgpu, (device) => {
    let model: ResNet;
    let x: Tensor;
    let convs: [string, Conv2d][];
    beforeAll(async () => {
      model = await calibratedResnet18(device);
      x = global.tensor('input', device);
      convs = model.namedModules().filter((e): e is [string, Conv2d] => e[1] instanceof Conv2d);
      await prune.globalUnstructured(convs.map(([, m]) => [m, 'weight'] as [Module, string]), prune.L1Unstructured, { amount: 0.2 });
    }, 600_000);
    afterAll(() => {
      model?.releaseFolded();
      model?.dispose();
      x?.dispose();
    });

    it("every conv's mask is PyTorch's (20% of all conv weights, unevenly spread)", async () => {
      // The .pth is the model gen_prune.py pruned (the sum of conv1.weight_orig it started from).
      const w0 = await (model.conv1 as unknown as Pruned).weight_orig.toArray();
      let s0 = 0;
      for (const v of w0) s0 += v;
      expect(Math.abs(s0 - (global.args.conv1Sum as number))).toBeLessThan(1e-3);
      expect(convs.map(([n]) => n)).toEqual(convNames);
      let zeros = 0;
      let total = 0;
      for (const [n, m] of convs) {
        const mask = await (m as unknown as Pruned).weight_mask.toArray();
        const want = unpackBits(global.values(`mask.${n}`), mask.length);
        let diff = 0;
        for (let i = 0; i < mask.length; i++) if (mask[i] !== want[i]) diff++;
        expect(diff, `${n}: entries whose mask differs from PyTorch's`).toBe(0);
        const z = mask.filter((v) => v === 0).length;
        expect(z, n).toBe((global.args.zeros as Record<string, number>)[n]);
        zeros += z;
        total += mask.length;
      }
      expect(zeros).toBe(Math.round(0.2 * total));
      const r = await prune.sparsity(model, convs.map(([, m]) => [m, 'weight'] as [Module, string]));
      expect(r.global.zeros).toBe(zeros);
    }, 300_000);

    const logits = async (fused: boolean) => {
      model.setFuseInference(fused);
      const y = noGrad(() => model.call(x));
      const v = (await y.toArray()) as Float32Array;
      y.dispose();
      return v;
    };

    it(`eval logits of the pruned model equal PyTorch's, fused and layer by layer (within ${LOGITS_ATOL})`, async () => {
      const want = global.values('logits');
      for (const fused of [true, false]) {
        const got = await logits(fused);
        report(`${device} pruned logits ${fused ? 'fused' : 'unfused'}`, maxAbsDiff(got, want));
        expectClose(got, want, { rtol: 0, atol: LOGITS_ATOL }, `logits (${fused ? 'fused' : 'unfused'})`);
      }
      model.setFuseInference(true);
    }, 300_000);

    // 100 forwards as the issue asks on WebGPU; 25 on the CPU backend, where
    // one costs ~0.2 s even at 32x32 (the per-conv memory test in
    // packages/nn/test/prune-effective.test.ts runs 100 on both paths).
    const forwards = device === 'cpu' ? 25 : 100;
    it(`${forwards} eval forwards of the pruned model allocate nothing that outlives them`, async () => {
      const small = x.narrow(0, 0, 1).narrow(2, 0, 32).narrow(3, 0, 32);
      await logits(true);
      const one = () => noGrad(() => model.call(small).dispose());
      one();
      const before = memory(device);
      for (let i = 0; i < forwards; i++) {
        one();
        if (i % 10 === 9) await new Promise((r) => setImmediate(r));
      }
      const after = memory(device);
      expect([after.numTensors, after.bytesInUse]).toEqual([before.numTensors, before.bytesInUse]);
      small.dispose();
    }, 300_000);
  });

  describeEachBackend('one fine-tuning step, then remove()', webgpu, (device) => {
    const steps = tune.args.steps as Record<string, number>;
    const sums = tune.args.sums as Record<string, number>;
    let model: ResNet;
    let convs: [string, Conv2d][];
    let loss = 0;
    const masks = new Map<string, Float32Array>();
    const grads = new Map<string, Float32Array>();
    const after = new Map<string, Float32Array>();
    const removed = new Map<string, Float32Array>();
    let keys: string[] = [];

    beforeAll(async () => {
      model = await calibratedResnet18(device);
      convs = model.namedModules().filter((e): e is [string, Conv2d] => e[1] instanceof Conv2d);
      // The optimizer is built before pruning: it must keep training weight_orig.
      const opt = new optim.SGD(model.parameters(), { lr: tune.args.lr as number, momentum: tune.args.momentum as number });
      await prune.globalUnstructured(convs.map(([, m]) => [m, 'weight'] as [Module, string]), prune.L1Unstructured, { amount: 0.2 });
      const x = global.tensor('input', device);
      const labels = tensor(tune.args.labels as number[], { dtype: 'int32', device });
      model.train();
      opt.zeroGrad();
      const l = new CrossEntropyLoss().call(model.call(x), labels);
      l.backward();
      loss = await l.item();
      l.dispose();
      for (const [n, m] of convs) {
        const p = m as unknown as Pruned;
        masks.set(n, (await p.weight_mask.toArray()) as Float32Array);
        grads.set(n, (await p.weight_orig.grad!.toArray()) as Float32Array);
      }
      opt.step();
      for (const [n, m] of convs) after.set(n, (await (m as unknown as Pruned).weight_orig.toArray()) as Float32Array);
      for (const [, m] of convs) prune.remove(m, 'weight');
      const sd = model.stateDict();
      keys = Object.keys(sd);
      for (const [k, t] of Object.entries(sd)) {
        if (t.dtype === 'float32') removed.set(k, (await t.toArray()) as Float32Array);
        t.dispose();
      }
      x.dispose();
      labels.dispose();
      opt.dispose();
    }, 900_000);
    afterAll(() => model?.dispose());

    // Compared relative to the tensor's largest magnitude, as tests/resnet.parity
    // does: a gradient's small entries are differences of large ones.
    const check = (got: Float32Array, key: string, rel: number) => {
      const want = ref.case('finetune').values(key);
      const sample = strided(got, steps[key] ?? 1);
      const scale = maxAbs(want);
      expectClose(sample, want, { rtol: 0, atol: rel * scale + 1e-7 }, key);
      let s = 0;
      for (const v of got) s += v;
      expect(Math.abs(s - sums[key]!), `${key} sum`).toBeLessThan(rel * scale * Math.sqrt(got.length) + 1e-5);
      return maxAbsDiff(sample, want) / (scale || 1);
    };

    it("the loss is PyTorch's", () => {
      const want = tune.values('loss')[0]!;
      report(`${device} pruned finetune loss`, Math.abs(loss - want));
      expect(Math.abs(loss - want)).toBeLessThan(1e-4 * Math.max(1, Math.abs(want)));
    });

    it("weight_orig gradients are PyTorch's, and exactly zero wherever the mask is 0", () => {
      let worst = 0;
      for (const [n] of convs) {
        const g = grads.get(n)!;
        const m = masks.get(n)!;
        let leaked = 0;
        for (let i = 0; i < g.length; i++) if (m[i] === 0 && g[i] !== 0) leaked++;
        expect(leaked, `${n}: masked entries with a gradient`).toBe(0);
        worst = Math.max(worst, check(g, `grad.${n}.weight_orig`, 2e-3));
      }
      report(`${device} pruned finetune grads (relative to max |grad|)`, worst);
    });

    it('weight_orig after the SGD step (lr 0.01, momentum 0.9) is PyTorch\'s', () => {
      let worst = 0;
      for (const [n] of convs) worst = Math.max(worst, check(after.get(n)!, `step.${n}.weight_orig`, 1e-5));
      report(`${device} pruned finetune weights (relative to max |w|)`, worst);
    });

    it("after remove() the state dict has PyTorch's keys and values (pruned entries 0)", () => {
      expect(keys).toEqual(tune.args.keys);
      let worst = 0;
      for (const [k, v] of removed) worst = Math.max(worst, check(v, `removed.${k}`, k.includes('running') ? 1e-4 : 1e-5));
      for (const [n] of convs) {
        const w = removed.get(`${n}.weight`)!;
        const m = masks.get(n)!;
        let nonzero = 0;
        for (let i = 0; i < w.length; i++) if (m[i] === 0 && w[i] !== 0) nonzero++;
        expect(nonzero, `${n}: pruned entries that are not 0`).toBe(0);
      }
      report(`${device} state dict after remove (relative)`, worst);
      expect(prune.isPruned(model)).toBe(false);
    });
  });
}, 'resnet_io');
