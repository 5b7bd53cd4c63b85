// The public custom autograd Function, gradient-checked against PyTorch: each
// row defines in Kiln the same forward/backward as a torch.autograd.Function
// of tests/reference/gen_checkpoint_function.py (whose formulas PyTorch's
// gradcheck verified in float64), and the outputs and the input gradients
// Kiln's engine computes through it must match PyTorch's on every backend.
import * as kiln from '@kiln/core';
import { Function, FunctionCtx, type Tensor } from '@kiln/core';
import type { Tolerance } from './helpers/compare.js';
import { describeTableParity } from './parity/table-suite.js';
import type { Table } from './parity/table-case.js';

class Exp extends Function {
  static override forward(ctx: FunctionCtx, x: Tensor): Tensor {
    const y = x.exp();
    ctx.saveForBackward(y);
    return y;
  }
  static override backward(ctx: FunctionCtx, g: Tensor): Tensor {
    return g.mul(ctx.savedTensors[0]!);
  }
}

class ScaledMul extends Function {
  static override forward(ctx: FunctionCtx, x: Tensor, y: Tensor, alpha: number): Tensor {
    ctx.saveForBackward(x, y);
    ctx.alpha = alpha;
    return x.mul(y).mul(alpha);
  }
  static override backward(ctx: FunctionCtx, g: Tensor): (Tensor | null)[] {
    const [x, y] = ctx.savedTensors;
    const alpha = ctx.alpha as number;
    return [ctx.needsInputGrad[0] ? g.mul(y!).mul(alpha) : null, ctx.needsInputGrad[1] ? g.mul(x!).mul(alpha) : null, null];
  }
}

class SinCos extends Function {
  static override forward(ctx: FunctionCtx, x: Tensor): Tensor[] {
    ctx.saveForBackward(x);
    return [x.sin(), x.cos()];
  }
  static override backward(ctx: FunctionCtx, gs: Tensor, gc: Tensor): Tensor {
    const [x] = ctx.savedTensors;
    return gs.mul(x!.cos()).sub(gc.mul(x!.sin()));
  }
}

class ReluMask extends Function {
  static override forward(ctx: FunctionCtx, x: Tensor): Tensor[] {
    const mask = x.gt(0).to('float32');
    ctx.markNonDifferentiable(mask);
    ctx.saveForBackward(mask);
    return [x.mul(mask), mask];
  }
  static override backward(ctx: FunctionCtx, g: Tensor): Tensor {
    return g.mul(ctx.savedTensors[0]!);
  }
}

// One or two float32 roundings per element beyond PyTorch's own (exp/sin/cos
// differ by an ulp or two between libm and WGSL); the composed row adds a
// 3-term matmul and tanh.
const TOL: Tolerance = { rtol: 1e-6 * 4, atol: 1e-6 };
const COMPOSED_TOL: Tolerance = { rtol: 2e-5, atol: 2e-6 };

const TABLE: Table = {
  exp: { tol: TOL, run: ([x]) => Exp.apply(x!) },
  scaledMul: { tol: TOL, run: ([x, y], a) => ScaledMul.apply(x!, y!, a.alpha as number) },
  sinCos: { tol: TOL, run: ([x]) => SinCos.apply(x!) },
  sinCosFirst: { tol: TOL, run: ([x]) => SinCos.apply(x!)[0]!.mul(2) },
  reluMask: { tol: TOL, run: ([x]) => ReluMask.apply(x!) },
  composed: {
    tol: COMPOSED_TOL,
    run: ([x, w, b]) => kiln.tanh(Exp.apply(x!.matmul(w!).mul(0.3)).add(ScaledMul.apply(b!, b!, 0.5))),
  },
};

await describeTableParity('custom autograd Function vs PyTorch', 'checkpoint_function', TABLE, (c) => c.name.startsWith('function/'));
