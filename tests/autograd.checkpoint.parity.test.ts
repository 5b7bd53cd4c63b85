// Activation checkpointing against PyTorch (tests/reference/gen_checkpoint.py)
// on every backend: a residual block in training mode, checkpointed, gives
// PyTorch's output and gradients, and its BatchNorm running statistics are
// those of ONE update (PyTorch's own checkpoint updates them twice, which
// the generator asserts); parameters get gradients when no input requires
// grad; checkpointSequential matches torch's checkpoint_sequential.
import { afterAll, expect, it } from 'vitest';
import * as kiln from '@kiln/core';
import type { Tensor } from '@kiln/core';
import { BatchNorm2d, Conv2d, Linear, Module, Sequential, checkpointSequential } from '@kiln/nn';
import { expectClose, type Tolerance } from './helpers/compare.js';
import { describeEachBackend, webgpuStatus } from './helpers/env.js';
import { describeReference } from './helpers/reference.js';
import { upload } from './parity/table-case.js';

const webgpu = await webgpuStatus();
// The recomputation repeats the forward's float32 ops exactly, so Kiln's
// checkpointed run equals its plain run; against PyTorch these are the
// block's conv (36-term sums) and BatchNorm (50-element batch statistics)
// roundings, as in cnn.parity.test.ts.
const OUT_TOL: Tolerance = { rtol: 1e-4, atol: 1e-5 };
const GRAD_TOL: Tolerance = { rtol: 1e-4, atol: 5e-5 };
const STAT_TOL: Tolerance = { rtol: 1e-5, atol: 1e-6 };

class Block extends Module {
  declare conv1: Conv2d;
  declare bn1: BatchNorm2d;
  declare conv2: Conv2d;
  declare bn2: BatchNorm2d;
  constructor(c: number, device: string) {
    super();
    this.conv1 = new Conv2d(c, c, 3, { padding: 1, bias: false, device });
    this.bn1 = new BatchNorm2d(c, { device });
    this.conv2 = new Conv2d(c, c, 3, { padding: 1, bias: false, device });
    this.bn2 = new BatchNorm2d(c, { device });
  }
  override forward(x: Tensor): Tensor {
    const y = this.bn1.call(this.conv1.call(x)).relu();
    return this.bn2.call(this.conv2.call(y)).add(x).relu();
  }
}

class Tanh extends Module {
  override forward(x: Tensor): Tensor {
    return x.tanh();
  }
}

const setAll = (targets: Tensor[], values: Tensor[]) => kiln.noGrad(() => targets.forEach((t, i) => t.copy_(values[i]!)));

describeReference('checkpoint vs PyTorch', 'checkpoint', (ref) => {
  const ran = new Map<string, number>();
  afterAll(() => console.log(`checkpoint vs PyTorch: ${[...ran].map(([b, n]) => `${n} cases on ${b}`).join(', ')} (PyTorch ${ref.torch}); ` +
    `outputs rtol ${OUT_TOL.rtol} atol ${OUT_TOL.atol}, grads rtol ${GRAD_TOL.rtol} atol ${GRAD_TOL.atol}, running stats rtol ${STAT_TOL.rtol} atol ${STAT_TOL.atol}`));
  it('the reference holds block and sequential cases', () => {
    expect(ref.cases.filter((c) => c.op === 'blockStep').length).toBe(2);
    expect(ref.cases.filter((c) => c.op === 'seqStep').length).toBe(2);
  });

  describeEachBackend('checkpoint', webgpu, (device) => {
    for (const c of ref.cases.filter((k) => k.op === 'blockStep')) {
      it(`${c.name}: output, gradients and once-updated running stats match PyTorch's plain run`, async () => {
        ran.set(device, (ran.get(device) ?? 0) + 1);
        const [xData, gout, ...params] = c.inputs.map((r) => upload(ref, r, device));
        const block = new Block(4, device).train();
        const leaves = [block.conv1.weight, block.bn1.weight!, block.bn1.bias!, block.conv2.weight, block.bn2.weight!, block.bn2.bias!];
        setAll(leaves, params);
        const x = xData!.detach().requiresGrad_(c.args.inputRequiresGrad as boolean);
        const y = kiln.checkpoint((h: Tensor) => block.call(h), x);
        const loss = y.mul(gout!).sum();
        loss.backward();
        try {
          expectClose(await y.toArray(), ref.values(c.outputs[0]!), OUT_TOL, 'y');
          if (c.args.inputRequiresGrad) expectClose(await x.grad!.toArray(), ref.values(c.outputs[1]!), GRAD_TOL, 'grad of x');
          else expect(x.grad).toBeNull();
          for (let i = 0; i < leaves.length; i++) {
            expect(leaves[i]!.grad, `grad of parameter ${i}`).not.toBeNull();
            expectClose(await leaves[i]!.grad!.toArray(), ref.values(c.outputs[2 + i]!), GRAD_TOL, `grad of parameter ${i}`);
          }
          const stats = [block.bn1.runningMean!, block.bn1.runningVar!, block.bn2.runningMean!, block.bn2.runningVar!];
          for (let i = 0; i < 4; i++) expectClose(await stats[i]!.toArray(), ref.values(c.outputs[8 + i]!), STAT_TOL, `running stat ${i}`);
          expect(Array.from(await block.bn1.numBatchesTracked!.toArray())).toEqual([1]);
        } finally {
          for (const t of [xData!, gout!, ...params, x, y, loss]) t.dispose();
          block.dispose();
        }
      });
    }

    for (const c of ref.cases.filter((k) => k.op === 'seqStep')) {
      it(`${c.name}: output and gradients match torch's checkpoint_sequential`, async () => {
        ran.set(device, (ran.get(device) ?? 0) + 1);
        const [xData, gout, ...params] = c.inputs.map((r) => upload(ref, r, device));
        const mods: Module[] = [];
        const leaves: Tensor[] = [];
        for (let i = 0; i < params.length; i += 2) {
          const lin = new Linear(params[i]!.shape[1]!, params[i]!.shape[0]!, { device });
          leaves.push(lin.weight, lin.bias!);
          mods.push(lin, new Tanh());
        }
        setAll(leaves, params);
        const model = new Sequential(...mods);
        const x = xData!.detach().requiresGrad_();
        const y = checkpointSequential(model, c.args.segments as number, x);
        const loss = y.mul(gout!).sum();
        loss.backward();
        try {
          expectClose(await y.toArray(), ref.values(c.outputs[0]!), OUT_TOL, 'y');
          expectClose(await x.grad!.toArray(), ref.values(c.outputs[1]!), GRAD_TOL, 'grad of x');
          for (let i = 0; i < leaves.length; i++) expectClose(await leaves[i]!.grad!.toArray(), ref.values(c.outputs[2 + i]!), GRAD_TOL, `grad of parameter ${i}`);
        } finally {
          for (const t of [xData!, gout!, ...params, x, y, loss]) t.dispose();
          model.dispose();
        }
      });
    }
  });
});
