// The mapping from tests/reference/gen_cnn.py's op names to Kiln calls, with
// each op's tolerance and the reason for it. Argument names are Kiln's; the
// operand order of each op is documented in the generator.
import * as kiln from '@kiln/core';
import type { Tensor } from '@kiln/core';
import { EXACT, type Tolerance } from '../helpers/compare.js';
import type { Table } from './table-case.js';

type Args = Record<string, any>;

/**
 * Convolutions are dot products of up to 512*3*3 = 4608 terms (ResNet18's
 * layer4), summed in a different order by each backend and by PyTorch
 * (which may use Winograd/im2col+BLAS); gradients likewise.
 */
export const CONV_TOL: Tolerance = { rtol: 1e-4, atol: 1e-4 };
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
    run: ([x, w, b], a) => kiln.conv2d(x!, w!, b ?? null, convOpts(a)),
  },
  conv2dFused: {
    tol: CONV_TOL,
    // The fused epilogue is the inference path: taken only without gradients.
    run: ([x, w, b, residual], a) => kiln.noGrad(() => kiln.conv2d(x!, w!, b!, { stride: a.stride, padding: a.padding }, { residual, relu: a.relu })),
  },
  conv2dEpilogue: {
    tol: CONV_TOL,
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
