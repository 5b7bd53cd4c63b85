// The fused optimizer updates (Backend.optimizerStep) as one loop over the
// elements of float32 views, each operation rounded to float32 as ATen's
// CPU kernels round it: a multiply, divide or sqrt rounds once, and an add
// with a scale (add(x, alpha=s), addcmul) is one fused multiply-add, as
// ATen's vectorized kernels compute it; the CPU result is torch's bit for bit.
import type { AdamStep, OptimizerStep, SgdStep, View } from '../backend.js';
import { numel } from '../shape.js';
import type { CpuStorage } from './storage.js';

const f = Math.fround;

/**
 * a * b + c rounded once to float32 (a, b, c float32 values). The product
 * is exact in a double; the sum rounds to a double, and that double is
 * rounded to float32 correctly unless it fell exactly on a float32
 * midpoint, where the sum's rounding error decides the side.
 */
function fmaf(a: number, b: number, c: number): number {
  const p = a * b;
  const s = p + c;
  const r = f(s);
  if (r === s || !Number.isFinite(s)) return r;
  const back = s - p;
  const err = (p - (s - back)) + (c - back);
  if (err === 0) return r;
  const other = 2 * s - r;
  if (f(other) !== other) return r;
  return err > 0 ? Math.max(r, other) : Math.min(r, other);
}

/** The flat float32 array of a contiguous view and where it starts. */
const flat = (v: View) => ({ a: (v.storage as CpuStorage).data as Float32Array, o: v.offset });

function sgd(s: SgdStep): void {
  const n = numel(s.param.shape);
  const p = flat(s.param);
  const g = flat(s.grad);
  const b = s.momentumBuffer ? flat(s.momentumBuffer) : null;
  for (let i = 0; i < n; i++) {
    const pv = p.a[p.o + i]!;
    let d = s.maximize ? -g.a[g.o + i]! : g.a[g.o + i]!;
    if (s.weightDecay !== 0) d = fmaf(s.weightDecay, pv, d);
    if (b) {
      const buf = s.initBuffer ? d : fmaf(s.dampenedScale, d, f(s.momentum * b.a[b.o + i]!));
      b.a[b.o + i] = buf;
      d = s.nesterov ? fmaf(s.momentum, buf, d) : buf;
    }
    p.a[p.o + i] = fmaf(s.negLr, d, pv);
  }
}

function adam(s: AdamStep): void {
  const n = numel(s.param.shape);
  const p = flat(s.param);
  const g = flat(s.grad);
  const m = flat(s.expAvg);
  const v = flat(s.expAvgSq);
  const mx = s.maxExpAvgSq ? flat(s.maxExpAvgSq) : null;
  for (let i = 0; i < n; i++) {
    const pv = f(p.a[p.o + i]! * s.paramScale);
    let gv = s.maximize ? -g.a[g.o + i]! : g.a[g.o + i]!;
    if (s.weightDecay !== 0) gv = fmaf(s.weightDecay, pv, gv);
    const mv = fmaf(s.oneMinusBeta1, gv, f(s.beta1 * m.a[m.o + i]!));
    const vv = fmaf(f(s.oneMinusBeta2 * gv), gv, f(s.beta2 * v.a[v.o + i]!));
    m.a[m.o + i] = mv;
    v.a[v.o + i] = vv;
    let second = vv;
    if (mx) {
      const old = mx.a[mx.o + i]!;
      // torch.maximum propagates NaN.
      second = old !== old || vv !== vv ? NaN : Math.max(old, vv);
      mx.a[mx.o + i] = second;
    }
    const denom = f(f(f(Math.sqrt(second)) / s.biasCorrection2Sqrt) + s.eps);
    p.a[p.o + i] = f(pv + f(f(s.negStepSize * mv) / denom));
  }
}

/** Runs one fused optimizer update (see Backend.optimizerStep) on host arrays. */
export function cpuOptimizerStep(step: OptimizerStep): void {
  if (step.rule === 'sgd') sgd(step);
  else adam(step);
}
