// GradScaler against PyTorch's own GradScaler code (tests/reference/gen_amp_scaler.py,
// which runs torch/cuda/amp/grad_scaler.py on the CPU with its CUDA kernels
// transcribed): a Linear(3, 2) trained with SGD for 14 steps, some of them
// with an inf or NaN in the batch. The scale after every update, which
// steps were skipped and the growth tracker must equal PyTorch's exactly
// (they are float32 values and counters: no tolerance); the final weights,
// which only the clean steps moved, within float32 SGD rounding.
import { afterAll, expect, it } from 'vitest';
import * as kiln from '@kiln/core';
import { GradScaler, Linear, optim } from '@kiln/nn';
import { expectClose, type Tolerance } from './helpers/compare.js';
import { describeEachBackend, webgpuStatus } from './helpers/env.js';
import { describeReference } from './helpers/reference.js';

const webgpu = await webgpuStatus();
// 14 SGD steps on a 3-input linear layer, each gradient a 4-sample mean
// that was scaled, then unscaled by a power-of-two-or-float32 inverse: a
// few float32 roundings per step, compounded over the steps.
const WEIGHT_TOL: Tolerance = { rtol: 1e-5, atol: 1e-6 };

interface Args {
  steps: number;
  lr: number;
  infSteps: number[];
  nanSteps: number[];
  initScale: number;
  growthFactor: number;
  backoffFactor: number;
  growthInterval: number;
}

describeReference('GradScaler vs PyTorch', 'amp_scaler', (ref) => {
  const ran = new Map<string, number>();
  afterAll(() => console.log(`GradScaler vs PyTorch: ${[...ran].map(([b, n]) => `${n} cases on ${b}`).join(', ')} (PyTorch ${ref.torch}); ` +
    `scale trajectory, skipped steps and growth tracker exact; final weights rtol ${WEIGHT_TOL.rtol} atol ${WEIGHT_TOL.atol}`));
  it('the reference holds the scripted runs', () => expect(ref.cases.filter((c) => c.op === 'scalerRun').length).toBe(3));

  describeEachBackend('GradScaler', webgpu, (device) => {
    for (const c of ref.cases.filter((k) => k.op === 'scalerRun')) {
      it(`${c.name}: the scale trajectory and skipped steps are PyTorch's exactly`, async () => {
        ran.set(device, (ran.get(device) ?? 0) + 1);
        const a = c.args as unknown as Args;
        const [xs, ys, w0, b0] = c.inputs.map((r) => ref.values(r) as Float32Array);
        const model = new Linear(3, 2, { device });
        kiln.noGrad(() => {
          model.weight.copy_(kiln.fromArray(w0!, [2, 3], { device }));
          model.bias!.copy_(kiln.fromArray(b0!, [2], { device }));
        });
        const opt = new optim.SGD(model.parameters(), { lr: a.lr });
        const scaler = new GradScaler({ initScale: a.initScale, growthFactor: a.growthFactor, backoffFactor: a.backoffFactor, growthInterval: a.growthInterval });
        const scales: number[] = [];
        const stepped: number[] = [];
        const trackers: number[] = [];
        for (let step = 0; step < a.steps; step++) {
          const xb = xs!.slice(step * 12, step * 12 + 12);
          if (a.infSteps.includes(step)) xb[0] = Infinity;
          if (a.nanSteps.includes(step)) xb[0] = NaN;
          const before = Array.from(await model.weight.toArray());
          opt.zeroGrad();
          kiln.tidy(() => {
            const x = kiln.fromArray(xb, [4, 3], { device });
            const y = kiln.fromArray(ys!.slice(step * 8, step * 8 + 8), [4, 2], { device });
            scaler.scale(kiln.mseLoss(model.call(x), y)).backward();
          });
          await scaler.step(opt);
          const after = Array.from(await model.weight.toArray());
          stepped.push(after.every((v, i) => v === before[i]) ? 0 : 1);
          scaler.update();
          scales.push(scaler.getScale());
          trackers.push(scaler.getGrowthTracker());
        }
        expect(scales).toEqual(Array.from(ref.values(c.outputs[0]!)));
        expect(stepped).toEqual(Array.from(ref.values(c.outputs[1]!)));
        expect(trackers).toEqual(Array.from(ref.values(c.outputs[2]!)));
        // The run must exercise both rules: some steps skipped, some taken.
        expect(stepped).toContain(0);
        expect(stepped).toContain(1);
        expectClose(await model.weight.toArray(), ref.values(c.outputs[3]!), WEIGHT_TOL, 'final weight');
        expectClose(await model.bias!.toArray(), ref.values(c.outputs[4]!), WEIGHT_TOL, 'final bias');
        opt.dispose();
        model.dispose();
      });
    }
  });
});
