// float16 on any backend: the backend stores float16 (2 bytes per element)
// and converts in copy(); every other primitive that meets a float16
// operand runs on float32 stand-ins: float16 inputs are widened into
// contiguous float32 temporaries, float16 outputs are computed into
// float32 temporaries and rounded back (round to nearest even) by copy().
// That is PyTorch's rule for half on the CPU and in its CUDA kernels:
// compute (and accumulate) in float32, round the result once. A backend
// with its own float16 kernels for a primitive lists it in
// `nativeFloat16` and is called directly.
import type { Backend, BackendStorage, View } from './backend.js';
import { contiguousStrides, numel } from './shape.js';

/**
 * For each primitive: the argument positions it writes, whether it reads
 * them first (accumulating primitives), and for an object argument at an
 * out position the fields it writes (the others are inputs).
 */
interface WriteSpec {
  outs: number[];
  readOuts?: boolean;
  fields?: string[];
}
const WRITES: Record<string, WriteSpec> = {
  fill: { outs: [0] },
  unary: { outs: [2] },
  binary: { outs: [3] },
  where: { outs: [3] },
  thresholdBackward: { outs: [3] },
  reduce: { outs: [3] },
  matmul: { outs: [2] },
  gather: { outs: [3] },
  scatterAdd: { outs: [0], readOuts: true },
  indexSelect: { outs: [3] },
  indexAdd: { outs: [0], readOuts: true },
  conv2d: { outs: [2] },
  conv2dBackwardInput: { outs: [2] },
  conv2dBackwardWeight: { outs: [2] },
  maxPool2d: { outs: [1, 2] },
  maxPool2dBackward: { outs: [2] },
  avgPool2d: { outs: [1] },
  avgPool2dBackward: { outs: [1] },
  adaptiveAvgPool2d: { outs: [1] },
  adaptiveAvgPool2dBackward: { outs: [1] },
  batchNormStats: { outs: [1, 2] },
  channelAffine: { outs: [3] },
  batchNormBackwardReduce: { outs: [4, 5] },
  batchNormBackwardInput: { outs: [7] },
  optimizerStep: { outs: [0], readOuts: true, fields: ['param', 'momentumBuffer', 'expAvg', 'expAvgSq', 'maxExpAvgSq'] },
};

/** A backend that runs some primitives on float16 operands itself (the rest get float32 stand-ins). */
export interface NativeFloat16 {
  /** Primitive names (e.g. 'unary', 'matmul') that accept float16 views directly. */
  readonly nativeFloat16?: ReadonlySet<string>;
}

const isView = (x: unknown): x is View =>
  typeof x === 'object' && x !== null && 'storage' in x && 'strides' in x && 'dtype' in x && 'shape' in x;

const hasHalf = (x: unknown): boolean => {
  if (isView(x)) return x.dtype === 'float16';
  if (typeof x === 'object' && x !== null && !Array.isArray(x)) return Object.values(x).some((v) => isView(v) && v.dtype === 'float16');
  return false;
};

/**
 * Makes every primitive of `backend` listed in WRITES accept float16
 * views (see the file comment); called once when a backend registers.
 */
export function installFloat16Fallback(backend: Backend): void {
  const native = (backend as Backend & NativeFloat16).nativeFloat16 ?? new Set<string>();
  const b = backend as unknown as Record<string, (...args: unknown[]) => unknown>;
  for (const [name, spec] of Object.entries(WRITES)) {
    const original = b[name];
    if (typeof original !== 'function' || native.has(name)) continue;
    b[name] = function (this: unknown, ...args: unknown[]) {
      if (!args.some(hasHalf)) return original.apply(backend, args);
      return runWidened(backend, (a) => original.apply(backend, a), args, spec);
    };
  }
}

function runWidened(backend: Backend, call: (args: unknown[]) => unknown, args: unknown[], spec: WriteSpec): unknown {
  const temps: BackendStorage[] = [];
  const writeBack: [View, View][] = [];
  const widen = (v: View, read: boolean): View => {
    const n = numel(v.shape);
    const storage = backend.alloc(n, 'float32');
    temps.push(storage);
    const w: View = { storage, dtype: 'float32', shape: v.shape, strides: contiguousStrides(v.shape), offset: 0 };
    if (read && n > 0) backend.copy(v, w);
    return w;
  };
  const map = (x: unknown, isOut: boolean): unknown => {
    if (isView(x)) {
      if (x.dtype !== 'float16') return x;
      const w = widen(x, !isOut || spec.readOuts === true);
      if (isOut) writeBack.push([w, x]);
      return w;
    }
    // An epilogue object (bias, residual): its views are inputs; an optimizer step's also holds the views it updates.
    if (typeof x === 'object' && x !== null && !Array.isArray(x) && hasHalf(x)) {
      return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, map(v, isOut && (spec.fields ?? []).includes(k))]));
    }
    return x;
  };
  try {
    const widened = args.map((a, i) => map(a, spec.outs.includes(i)));
    const r = call(widened);
    for (const [w, v] of writeBack) if (numel(v.shape) > 0) backend.copy(w, v);
    return r;
  } finally {
    for (const t of temps) backend.release(t);
  }
}
