// The fused optimizer updates (core's sgdStep_ / adamStep_, one kernel per
// parameter) against torch.optim.SGD, Adam and AdamW (tests/reference/gen_optim.py):
// every flag combination (momentum, dampening, nesterov, weight decay,
// maximize; Adam/AdamW, amsgrad), three steps with a changing learning rate,
// two parameters (one per WebGPU kernel width: one element or a vec4 per
// thread), each with every state tensor after each step, on every backend.
// Also: float16 parameters through core's float32 stand-ins, and the errors.
import { afterAll, expect, it } from 'vitest';
import * as kiln from '@kiln/core';
import { optim } from '@kiln/nn';
import { EXACT, describeEachBackend, describeReference, expectClose, webgpuStatus, type RefCase, type ReferenceFile, type Tolerance } from '@kiln/test-helpers';

const webgpu = await webgpuStatus();

// Tolerances. CPU: exact. The reference loop rounds every operation as
// ATen's CPU kernels do (each add with a scale is one fused multiply-add),
// so it reproduces torch's bits. WebGPU: WGSL's fma may round twice
// (lavapipe does), so each of the update's ~4 scaled adds per step can be
// off by half an ulp of its product term; over 3 steps on values of
// magnitude up to ~4 that is a few 1e-7 absolute (observed on lavapipe:
// 4.8e-7 SGD, 1.2e-7 Adam; ~11% of values not bit-equal). atol 1e-6 plus
// rtol 1e-6 leave >= 2x (more on the larger values) for adapters whose
// sqrt and division are not correctly rounded (WGSL allows 2.5 ulp).
const tolerance = (device: string): Tolerance => (device === 'cpu' ? EXACT : { rtol: 1e-6, atol: 1e-6 });

/** Per backend and rule: how many values were not bit-equal to PyTorch's, and the largest |difference| and |difference| / |value|. */
const worst = new Map<string, { differ: number; total: number; abs: number; rel: number }>();
function track(key: string, got: ArrayLike<number>, want: ArrayLike<number>): void {
  const w = worst.get(key) ?? { differ: 0, total: 0, abs: 0, rel: 0 };
  for (let i = 0; i < want.length; i++) {
    if (got[i] === want[i]) continue;
    const d = Math.abs(got[i]! - want[i]!);
    w.differ++;
    w.abs = Math.max(w.abs, d);
    w.rel = Math.max(w.rel, d / Math.abs(want[i]!));
  }
  w.total += want.length;
  worst.set(key, w);
}

interface OptimArgs {
  lrs: number[];
  stateKeys: string[];
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
  weight_decay: number;
  maximize: boolean;
  decoupled?: boolean;
  betas?: [number, number];
  eps?: number;
  amsgrad?: boolean;
}

function makeOptimizer(c: RefCase, params: kiln.Tensor[]): optim.Optimizer {
  const a = c.args as unknown as OptimArgs;
  if (c.op === 'sgd') {
    return new optim.SGD(params, { lr: a.lrs[0]!, momentum: a.momentum, dampening: a.dampening, nesterov: a.nesterov, weightDecay: a.weight_decay, maximize: a.maximize });
  }
  const Cls = a.decoupled ? optim.AdamW : optim.Adam;
  return new Cls(params, { lr: a.lrs[0]!, betas: a.betas, eps: a.eps, weightDecay: a.weight_decay, amsgrad: a.amsgrad, maximize: a.maximize });
}

/** Steps one optimizer over the case's parameters once per gradient; returns, after each step, per parameter, it and its state tensors, as the reference lists them. */
async function runCase(ref: ReferenceFile, c: RefCase, device: string): Promise<Float32Array[]> {
  const a = c.args as unknown as OptimArgs;
  const per = 1 + a.lrs.length;
  const upload = (i: number) => kiln.fromArray(ref.values(c.inputs[i]!), c.inputs[i]!.shape, { device });
  const params = Array.from({ length: c.inputs.length / per }, (_, i) => upload(i * per).requiresGrad_(true));
  const opt = makeOptimizer(c, params);
  const got: Float32Array[] = [];
  for (let s = 0; s < a.lrs.length; s++) {
    opt.paramGroups[0]!.lr = a.lrs[s]!;
    params.forEach((p, i) => {
      p.grad?.dispose();
      p.grad = upload(i * per + 1 + s);
    });
    opt.step();
    for (const p of params) {
      got.push((await p.toArray()) as Float32Array);
      for (const k of a.stateKeys) got.push((await (opt.state.get(p)![k] as kiln.Tensor).toArray()) as Float32Array);
    }
  }
  opt.dispose();
  for (const p of params) {
    p.grad?.dispose();
    p.dispose();
  }
  return got;
}

describeReference('fused optimizer steps vs PyTorch', 'optim', (ref) => {
  afterAll(() => console.log(`fused optimizer steps vs PyTorch ${ref.torch}: ` +
    [...worst].map(([k, v]) => `${k}: ${v.differ}/${v.total} values not bit-equal, max |diff| ${v.abs.toExponential(2)}, max |diff|/|value| ${v.rel.toExponential(2)}`).join('; ')));
  it('the reference holds every flag combination', () => {
    expect(ref.cases.filter((c) => c.op === 'sgd').length).toBe(16);
    expect(ref.cases.filter((c) => c.op === 'adam').length).toBe(16);
  });

  describeEachBackend('fused optimizer steps', webgpu, (device) => {
    for (const c of ref.cases) {
      it(`${c.name}: both parameters and their state after each of 3 steps equal PyTorch's`, async () => {
        const got = await runCase(ref, c, device);
        expect(got.length).toBe(c.outputs.length);
        const tol = tolerance(device);
        got.forEach((g, i) => {
          const want = ref.values(c.outputs[i]!);
          track(`${device} ${c.op}`, g, want);
          expectClose(g, want, tol, `output ${i}`);
        });
      });
    }
  });
});

describeEachBackend('fused optimizer steps: float16 and errors', webgpu, (device) => {
  it('a float16 parameter gets the float32 update of its widened values, rounded once to float16', async () => {
    kiln.manualSeed(3);
    const p32 = kiln.randn([300], { device });
    const g32 = kiln.randn([300], { device });
    const p16 = p32.to('float16').requiresGrad_(true);
    const widened = p16.detach().to('float32').requiresGrad_(true);
    const opts = { lr: 0.1, momentum: 0.9, weightDecay: 1e-2 };
    const half = new optim.SGD([p16], opts);
    const full = new optim.SGD([widened], opts);
    p16.grad = g32.to('float16');
    widened.grad = p16.grad.to('float32');
    half.step();
    full.step();
    expect(p16.dtype).toBe('float16');
    const buf = half.state.get(p16)!.momentum_buffer as kiln.Tensor;
    expect(buf.dtype).toBe('float16');
    expect(Array.from(await p16.to('float32').toArray())).toEqual(Array.from(await widened.detach().to('float16').to('float32').toArray()));
    const fullBuf = full.state.get(widened)!.momentum_buffer as kiln.Tensor;
    expect(Array.from(await buf.to('float32').toArray())).toEqual(Array.from(await fullBuf.to('float16').to('float32').toArray()));
    for (const t of [p32, g32, p16, widened, p16.grad, widened.grad]) t.dispose();
    half.dispose();
    full.dispose();
  });

  it('sgdStep_/adamStep_ name the op and what they expected', () => {
    const p = kiln.zeros([2, 3], { device });
    expect(() => kiln.sgdStep_(p, kiln.zeros([3, 2], { device }), null, { lr: 0.1 })).toThrow(/^sgdStep_: expected grad of the parameter's shape \[2, 3\], got \[3, 2\]/);
    expect(() => kiln.sgdStep_(p, kiln.zeros([2, 3], { device, dtype: 'int32' }), null, { lr: 0.1 })).toThrow(/sgdStep_: expected grad of the parameter's dtype float32, got int32/);
    const state = { expAvg: kiln.zeros([2, 3], { device }), expAvgSq: kiln.zeros([6], { device }) };
    expect(() => kiln.adamStep_(p, kiln.zeros([2, 3], { device }), state, { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, step: 1 })).toThrow(/adamStep_: expected state of the parameter's shape \[2, 3\], got \[6\]/);
    const leaf = kiln.zeros([2], { device, requiresGrad: true });
    expect(() => kiln.sgdStep_(leaf, kiln.zeros([2], { device }), null, { lr: 0.1 })).toThrow(/sgdStep_: .*run it under noGrad\(\)/);
  });
});
