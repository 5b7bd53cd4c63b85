import type { BinaryOp, UnaryOp, UnaryParams, View } from '../backend.js';
import { numel } from '../shape.js';
import { arr, offsetsOf, reader } from './strided.js';
import { isFloating, type TypedArray } from '../dtype.js';
import { halfBits } from '../float16.js';
import { isContiguous } from '../shape.js';

/** Round half to even, as torch.round. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

const UNARY: Record<UnaryOp, (x: number, p?: UnaryParams) => number> = {
  neg: (x) => -x,
  abs: Math.abs,
  exp: Math.exp,
  log: Math.log,
  sqrt: Math.sqrt,
  rsqrt: (x) => 1 / Math.sqrt(x),
  sin: Math.sin,
  cos: Math.cos,
  tanh: Math.tanh,
  sigmoid: (x) => 1 / (1 + Math.exp(-x)),
  relu: (x) => (x > 0 ? x : x !== x ? x : 0),
  sign: (x) => (x > 0 ? 1 : x < 0 ? -1 : 0), // NaN -> 0, as PyTorch
  floor: Math.floor,
  ceil: Math.ceil,
  round: roundHalfEven,
  clamp: (x, p) => {
    if (x !== x) return x;
    let y = x;
    if (p?.min !== undefined) y = Math.max(y, p.min);
    if (p?.max !== undefined) y = Math.min(y, p.max);
    return y;
  },
  square: (x) => x * x,
  reciprocal: (x) => 1 / x,
  logicalNot: (x) => (x !== 0 ? 0 : 1), // NaN is nonzero, hence true
};

const BINARY: Record<BinaryOp, (a: number, b: number) => number> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  pow: Math.pow,
  maximum: (a, b) => (a !== a || b !== b ? NaN : Math.max(a, b)),
  minimum: (a, b) => (a !== a || b !== b ? NaN : Math.min(a, b)),
  eq: (a, b) => +(a === b),
  ne: (a, b) => +(a !== b),
  lt: (a, b) => +(a < b),
  le: (a, b) => +(a <= b),
  gt: (a, b) => +(a > b),
  ge: (a, b) => +(a >= b),
  logicalAnd: (a, b) => +(a !== 0 && b !== 0),
  logicalOr: (a, b) => +(a !== 0 || b !== 0),
};

/** Converts a computed value to what `dtype` stores (bool is x != 0; ints wrap via the typed array). */
function storer(out: View): (i: number, v: number) => void {
  const data = arr(out);
  const offs = offsetsOf(out.shape, out.strides, out.offset);
  if (out.dtype === 'bool') return (i, v) => (data[offs[i]!] = v !== 0 ? 1 : 0);
  if (out.dtype === 'float16') return (i, v) => (data[offs[i]!] = halfBits(v));
  return (i, v) => (data[offs[i]!] = v);
}

function intMul(a: number, b: number): number {
  return Math.imul(a, b);
}

/**
 * The elements of a view as a flat array when it is contiguous with exactly
 * `shape` (no broadcasting): the fast path skips offset tables and closures.
 */
function flat(x: View | number, shape: readonly number[], n: number): TypedArray | number | null {
  if (typeof x === 'number') return x;
  if (x.shape.length !== shape.length || !isContiguous(x.shape, x.strides) || x.shape.some((d, i) => d !== shape[i])) return null;
  return arr(x).subarray(x.offset, x.offset + n);
}

/** Fast binary loops for the ops training leans on; null when not applicable. */
function fastBinary(op: BinaryOp, a: TypedArray | number, b: TypedArray | number, o: TypedArray, n: number): boolean {
  if (typeof a !== 'number' && typeof b !== 'number') {
    switch (op) {
      case 'add': for (let i = 0; i < n; i++) o[i] = a[i]! + b[i]!; return true;
      case 'sub': for (let i = 0; i < n; i++) o[i] = a[i]! - b[i]!; return true;
      case 'mul': for (let i = 0; i < n; i++) o[i] = a[i]! * b[i]!; return true;
      case 'div': for (let i = 0; i < n; i++) o[i] = a[i]! / b[i]!; return true;
      default: return false;
    }
  }
  if (typeof a !== 'number' && typeof b === 'number') {
    switch (op) {
      case 'add': for (let i = 0; i < n; i++) o[i] = a[i]! + b; return true;
      case 'sub': for (let i = 0; i < n; i++) o[i] = a[i]! - b; return true;
      case 'mul': for (let i = 0; i < n; i++) o[i] = a[i]! * b; return true;
      case 'div': for (let i = 0; i < n; i++) o[i] = a[i]! / b; return true;
      default: return false;
    }
  }
  return false;
}

export function cpuFill(out: View, value: number): void {
  const set = storer(out);
  for (let i = 0, n = numel(out.shape); i < n; i++) set(i, value);
}

export function cpuCopy(x: View, out: View): void {
  if (x.dtype === out.dtype) {
    const n = numel(out.shape);
    const o = flat(out, out.shape, n);
    const xs = o === null ? null : flat(x, out.shape, n);
    if (o !== null && xs !== null) {
      (o as TypedArray).set(xs as TypedArray);
      return;
    }
  }
  const get = reader(x, out.shape);
  const set = storer(out);
  const toInt = !isFloating(out.dtype) && out.dtype !== 'bool' && isFloating(x.dtype);
  for (let i = 0, n = numel(out.shape); i < n; i++) {
    const v = get(i);
    set(i, toInt ? (Number.isFinite(v) ? Math.trunc(v) : 0) : v);
  }
}

export function cpuUnary(op: UnaryOp, x: View, out: View, p?: UnaryParams): void {
  const f = UNARY[op];
  const n = numel(out.shape);
  const o = out.dtype === 'float32' ? flat(out, out.shape, n) : null;
  const xs = o ? flat(x, out.shape, n) : null;
  if (o && xs && typeof o !== 'number' && typeof xs !== 'number') {
    if (op === 'relu') for (let i = 0; i < n; i++) { const v = xs[i]!; o[i] = v > 0 || v !== v ? v : 0; }
    else for (let i = 0; i < n; i++) o[i] = f(xs[i]!, p);
    return;
  }
  const get = reader(x, out.shape);
  const set = storer(out);
  for (let i = 0, n = numel(out.shape); i < n; i++) set(i, f(get(i), p));
}

export function cpuBinary(op: BinaryOp, a: View | number, b: View | number, out: View): void {
  const isInt = out.dtype === 'int32' || out.dtype === 'int8' || out.dtype === 'uint8';
  const f = op === 'mul' && isInt ? intMul : BINARY[op];
  const n = numel(out.shape);
  if (out.dtype === 'float32') {
    const o = flat(out, out.shape, n);
    const fa = o === null ? null : flat(a, out.shape, n);
    const fb = fa === null ? null : flat(b, out.shape, n);
    if (o !== null && fa !== null && fb !== null && fastBinary(op, fa, fb, o as TypedArray, n)) return;
  }
  const ga = reader(a, out.shape);
  const gb = reader(b, out.shape);
  const set = storer(out);
  if (isInt && op === 'pow') {
    for (let i = 0; i < n; i++) set(i, Math.trunc(Math.pow(ga(i), gb(i))));
    return;
  }
  for (let i = 0; i < n; i++) set(i, f(ga(i), gb(i)));
}

export function cpuWhere(cond: View, a: View | number, b: View | number, out: View): void {
  const gc = reader(cond, out.shape);
  const ga = reader(a, out.shape);
  const gb = reader(b, out.shape);
  const set = storer(out);
  for (let i = 0, n = numel(out.shape); i < n; i++) set(i, gc(i) ? ga(i) : gb(i));
}

export function cpuThresholdBackward(grad: View, x: View, threshold: number, out: View): void {
  const gg = reader(grad, out.shape);
  const gx = reader(x, out.shape);
  const set = storer(out);
  for (let i = 0, n = numel(out.shape); i < n; i++) set(i, gx(i) <= threshold ? 0 : gg(i));
}
