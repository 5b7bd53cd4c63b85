// The mapping from tests/reference/gen_cnn.py's op names to Kiln calls, with
// each op's tolerance and the reason for it. Argument names are Kiln's; the
// operand order of each op is documented in the generator.
import * as kiln from '@kiln/core';
import type { Tensor } from '@kiln/core';
import { EXACT, type Tolerance } from '../helpers/compare.js';
import type { Table } from './table-case.js';
import type { RefCase } from '../helpers/reference.js';

type Args = Record<string, any>;

/**
 * Convolutions are dot products of K = Cin/groups * kh * kw terms (up to
 * 512*3*3 = 4608 in ResNet18's layer4), summed in another order by each
 * backend and by PyTorch (im2col + BLAS, Winograd). Float32 rounding of such
 * a sum grows like sqrt(K) (random-walk error), so the tolerance is
 * CONV_TOL_PER_SQRT_K * sqrt(K), relative and absolute: 5.2e-6 for a 3x3x3
 * kernel, 6.8e-5 for layer4. Measured worst max|diff| / sqrt(K) over every
 * conv case: 2.1e-7 (CPU), 3.4e-7 (WebGPU), outputs of magnitude <= 6.
 * Each gradient is a sum of its own length: dx over Cout/groups*kh*kw
 * terms, dw and db over N*oH*oW; their values grow with that length too
 * (max |dw| ~100 for ResNet18's conv1), hence the same rule on it.
 */
export const CONV_TOL_PER_SQRT_K = 1e-6;
/** The loosest conv tolerance (K = 4608), for suites that print one figure. */
export const CONV_TOL: Tolerance = { rtol: CONV_TOL_PER_SQRT_K * Math.sqrt(4608), atol: CONV_TOL_PER_SQRT_K * Math.sqrt(4608) };

const sqrtKTol = (k: number): Tolerance => {
  const t = CONV_TOL_PER_SQRT_K * Math.sqrt(Math.max(1, k));
  return { rtol: t, atol: t };
};

/**
 * A conv case's tolerances from its shapes: operands are x [N, C, H, W] (or
 * unbatched [C, H, W]), weight [O, C/groups, kh, kw], then bias / residual;
 * the output is [N, O, oH, oW].
 */
function convCaseTol(c: RefCase): { tol: Tolerance; gradTols: (Tolerance | undefined)[] } {
  const [o, cPerGroup, kh, kw] = c.inputs[1]!.shape as [number, number, number, number];
  const out = c.outputs[0]!.shape;
  const groups = Math.max(1, Math.round((c.inputs[0]!.shape.at(-3) ?? cPerGroup) / cPerGroup));
  const positions = out.slice(0, -3).reduce((a, b) => a * b, 1) * out.at(-2)! * out.at(-1)!;
  const dx = sqrtKTol((o / groups) * kh * kw);
  const dw = sqrtKTol(positions);
  return { tol: sqrtKTol(cPerGroup * kh * kw), gradTols: c.inputs.map((_, i) => (i === 0 ? dx : i === 1 ? dw : i === 2 ? dw : sqrtKTol(1))) };
}
/** Batch statistics (means of up to ~60 values), rsqrt and a few products; gradients chain ~10 ops. */
export const NORM_TOL: Tolerance = { rtol: 1e-4, atol: 1e-5 };
export const NORM_GRAD_TOL: Tolerance = { rtol: 1e-4, atol: 5e-5 };
/** Max pooling selects a value: exact. Its gradient adds overlapping windows' contributions in any order. */
export const MAXPOOL_TOL: Tolerance = EXACT;
export const MAXPOOL_GRAD_TOL: Tolerance = { rtol: 1e-6, atol: 1e-6 };
/** Averages of up to ~30 values and one division. */
export const AVGPOOL_TOL: Tolerance = { rtol: 1e-5, atol: 1e-6 };
/** Dot products of up to 512 terms. */
export const LINEAR_TOL: Tolerance = { rtol: 1e-5, atol: 5e-5 };
/** logSoftmax (exp/log, several ULP in WGSL) and a mean over the batch. */
export const LOSS_TOL: Tolerance = { rtol: 1e-5, atol: 2e-6 };
/** Squares and one sum. */
export const MSE_TOL: Tolerance = { rtol: 1e-5, atol: 1e-5 };

/** conv2d's options from a case's args. */
function convOpts(a: Args): kiln.Conv2dOptions {
  return { stride: a.stride, padding: a.padding, dilation: a.dilation, groups: a.groups };
}

/** Splits batchNorm's operands: x, [weight, bias] when affine, [runningMean, runningVar] when tracked. */
function batchNormRun([x, ...rest]: Tensor[], a: Args): Tensor | Tensor[] {
  const weight = a.affine ? rest.shift()! : null;
  const bias = a.affine ? rest.shift()! : null;
  const tracked = a.tracked ?? true;
  // The reference leaves its running-stat operands untouched (it updates clones): so do we.
  const runningMean = tracked ? rest[0]!.clone() : null;
  const runningVar = tracked ? rest[1]!.clone() : null;
  const y = kiln.batchNorm(x!, runningMean, runningVar, {
    weight,
    bias,
    training: a.training,
    momentum: a.momentum,
    eps: a.eps,
    numBatchesTracked: a.numBatchesTracked,
  });
  return a.training && tracked ? [y, runningMean!, runningVar!] : y;
}

function poolOpts(a: Args): kiln.Pool2dOptions {
  return {
    stride: a.stride,
    padding: a.padding,
    dilation: a.dilation,
    ceilMode: a.ceilMode,
    countIncludePad: a.countIncludePad,
    divisorOverride: a.divisorOverride ?? undefined,
  };
}

export const CNN_OPS: Table = {
  conv2d: {
    tol: CONV_TOL,
    caseTol: convCaseTol,
    run: ([x, w, b], a) => kiln.conv2d(x!, w!, b ?? null, convOpts(a)),
  },
  conv2dFused: {
    tol: CONV_TOL,
    caseTol: convCaseTol,
    // The fused epilogue is the inference path: taken only without gradients.
    run: ([x, w, b, residual], a) => kiln.noGrad(() => kiln.conv2d(x!, w!, b!, { stride: a.stride, padding: a.padding }, { residual, relu: a.relu })),
  },
  conv2dEpilogue: {
    tol: CONV_TOL,
    caseTol: convCaseTol,
    // The same epilogue with gradients on: core composes it, and the residual gets a gradient.
    run: ([x, w, b, residual], a) => kiln.conv2d(x!, w!, b!, { stride: a.stride, padding: a.padding }, { residual, relu: a.relu }),
  },
  batchNorm: { tol: NORM_TOL, gradTol: NORM_GRAD_TOL, run: batchNormRun },
  maxPool2d: {
    tol: MAXPOOL_TOL,
    gradTol: MAXPOOL_GRAD_TOL,
    run: ([x], a) => {
      const { values, indices } = kiln.maxPool2dWithIndices(x!, a.kernel, poolOpts(a));
      return [values, indices];
    },
  },
  avgPool2d: { tol: AVGPOOL_TOL, run: ([x], a) => kiln.avgPool2d(x!, a.kernel, poolOpts(a)) },
  adaptiveAvgPool2d: { tol: AVGPOOL_TOL, run: ([x], a) => kiln.adaptiveAvgPool2d(x!, a.outputSize) },
  linear: { tol: LINEAR_TOL, run: ([x, w, b]) => kiln.linear(x!, w!, b ?? null) },
  crossEntropy: {
    tol: LOSS_TOL,
    run: ([x, t, weight], a) => kiln.crossEntropy(x!, t!, {
      weight: a.hasWeight ? weight : null,
      reduction: a.reduction,
      labelSmoothing: a.labelSmoothing,
      ignoreIndex: a.ignoreIndex,
    }),
  },
  nllLoss: {
    tol: LOSS_TOL,
    run: ([x, t, weight], a) => kiln.nllLoss(x!, t!, { weight: a.hasWeight ? weight : null, reduction: a.reduction, ignoreIndex: a.ignoreIndex }),
  },
  mseLoss: { tol: MSE_TOL, run: ([x, t], a) => kiln.mseLoss(x!, t!, { reduction: a.reduction }) },
};

/** The ops each CNN parity suite runs, with a title. */
export const CNN_FAMILIES = {
  conv: ['conv2d', 'conv2dFused', 'conv2dEpilogue'],
  norm: ['batchNorm'],
  pool: ['maxPool2d', 'avgPool2d', 'adaptiveAvgPool2d'],
  loss: ['linear', 'crossEntropy', 'nllLoss', 'mseLoss'],
} as const;
