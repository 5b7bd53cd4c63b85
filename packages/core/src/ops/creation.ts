import { Tensor } from '../tensor.js';
import { getBackend, type Backend } from '../backend.js';
import { toTypedArray, type DType, type TypedArray, allocArray } from '../dtype.js';
import { KilnError, ShapeError, DTypeError, fmtShape } from '../errors.js';
import { numel, checkShape } from '../shape.js';
import { empty } from './util.js';
import { defaultGenerator, type Generator } from '../random.js';

/** Options every creation function takes. */
export interface TensorOptions {
  /** Element type. Default float32 (full() of a boolean value: bool). */
  dtype?: DType;
  /** Backend name ('cpu', 'webgpu'); defaults to the default backend. */
  device?: string;
  /** Record operations on this tensor for autograd. Default false. */
  requiresGrad?: boolean;
}

/** Nested arrays of numbers/booleans, a scalar, or a typed array. */
export type NestedArray = number | boolean | readonly NestedArray[];

function finishCreation(t: Tensor, opts: TensorOptions | undefined): Tensor {
  if (opts?.requiresGrad) t.requiresGrad_(true);
  return t;
}

function upload(op: string, data: TypedArray, shape: number[], dtype: DType, backend: Backend): Tensor {
  const t = empty(shape, dtype, backend, op);
  if (data.length !== numel(shape)) throw new ShapeError(op, `data has ${data.length} elements but shape ${fmtShape(shape)} needs ${numel(shape)}`);
  if (data.length > 0) backend.write(t._storage.data, data);
  return t;
}

function dtypeOfArray(data: ArrayLike<number>): DType {
  if (data instanceof Float32Array || data instanceof Float64Array) return 'float32';
  if (data instanceof Int32Array || data instanceof Int16Array || data instanceof Uint16Array) return 'int32';
  if (data instanceof Int8Array) return 'int8';
  if (data instanceof Uint8Array || data instanceof Uint8ClampedArray) return 'uint8';
  return 'float32';
}

/**
 * A tensor from a flat array and a shape (no nesting needed). The dtype
 * defaults from the array type: Float32Array->float32, Int32Array->int32, ...
 */
export function fromArray(data: ArrayLike<number> | ArrayLike<boolean>, shape: readonly number[], opts?: TensorOptions): Tensor {
  const s = checkShape('fromArray', shape);
  const dtype = opts?.dtype ?? dtypeOfArray(data as ArrayLike<number>);
  const typed = toTypedArray(dtype, data as ArrayLike<number>);
  return finishCreation(upload('fromArray', typed, s, dtype, getBackend(opts?.device)), opts);
}

function inferNested(op: string, data: NestedArray): { shape: number[]; flat: (number | boolean)[] } {
  const shape: number[] = [];
  let probe: NestedArray = data;
  while (Array.isArray(probe)) {
    shape.push(probe.length);
    probe = probe[0] as NestedArray;
    if (probe === undefined) break;
  }
  const flat: (number | boolean)[] = [];
  const walk = (x: NestedArray, depth: number) => {
    if (depth === shape.length) {
      if (typeof x !== 'number' && typeof x !== 'boolean') throw new KilnError(op, `expected a number or boolean at depth ${depth}, got ${Array.isArray(x) ? 'an array' : typeof x}`);
      flat.push(x);
      return;
    }
    if (!Array.isArray(x) || x.length !== shape[depth]) {
      throw new ShapeError(op, `expected a sequence of length ${shape[depth]} at dim ${depth} (ragged nested array)`);
    }
    for (const v of x) walk(v as NestedArray, depth + 1);
  };
  walk(data, 0);
  return { shape, flat };
}

/**
 * A tensor from (nested) data, as torch.tensor. Integers give int32 (Kiln
 * has no int64), any non-integer gives float32, booleans give bool.
 */
export function tensor(data: NestedArray | TypedArray, opts?: TensorOptions): Tensor {
  if (ArrayBuffer.isView(data)) return fromArray(data as TypedArray, [(data as TypedArray).length], opts);
  const { shape, flat } = inferNested('tensor', data);
  let dtype = opts?.dtype;
  if (!dtype) {
    if (flat.length > 0 && flat.every((v) => typeof v === 'boolean')) dtype = 'bool';
    else if (flat.length > 0 && flat.every((v) => typeof v === 'number' && Number.isInteger(v))) dtype = 'int32';
    else dtype = 'float32';
  }
  return finishCreation(upload('tensor', toTypedArray(dtype, flat as number[]), shape, dtype, getBackend(opts?.device)), opts);
}

/** A tensor filled with `value`. */
export function full(shape: readonly number[], value: number | boolean, opts?: TensorOptions): Tensor {
  const s = checkShape('full', shape);
  const dtype = opts?.dtype ?? (typeof value === 'boolean' ? 'bool' : 'float32');
  const t = empty(s, dtype, getBackend(opts?.device), 'full');
  if (t.numel() > 0) t._storage.backend.fill(t._view(), Number(value));
  return finishCreation(t, opts);
}

/** Zeros of `shape`. */
export function zeros(shape: readonly number[], opts?: TensorOptions): Tensor {
  return full(shape, 0, opts);
}

/** Ones of `shape`. */
export function ones(shape: readonly number[], opts?: TensorOptions): Tensor {
  return full(shape, 1, opts);
}

function likeOpts(t: Tensor, opts?: TensorOptions): TensorOptions {
  return { dtype: t.dtype, device: t.device, ...opts };
}

/** Zeros with t's shape, dtype and device. */
export function zerosLike(t: Tensor, opts?: TensorOptions): Tensor {
  return zeros(t.shape, likeOpts(t, opts));
}

/** Ones with t's shape, dtype and device. */
export function onesLike(t: Tensor, opts?: TensorOptions): Tensor {
  return ones(t.shape, likeOpts(t, opts));
}

/** `value` with t's shape, dtype and device. */
export function fullLike(t: Tensor, value: number, opts?: TensorOptions): Tensor {
  return full(t.shape, value, likeOpts(t, opts));
}

/** Values start, start+step, ... below end (torch.arange); one argument means [0, end). */
export function arange(start: number, end?: number, step = 1, opts?: TensorOptions): Tensor {
  if (end === undefined) [start, end] = [0, start];
  if (step === 0 || !Number.isFinite(step)) throw new KilnError('arange', `step must be nonzero and finite, got ${step}`);
  const n = Math.max(0, Math.ceil((end - start) / step));
  const allInts = [start, end, step].every(Number.isInteger);
  const dtype = opts?.dtype ?? (allInts ? 'int32' : 'float32');
  const data = allocArray(dtype, n);
  for (let i = 0; i < n; i++) data[i] = start + i * step;
  return finishCreation(upload('arange', data, [n], dtype, getBackend(opts?.device)), opts);
}

/** `steps` evenly spaced values from start to end inclusive (torch.linspace). */
export function linspace(start: number, end: number, steps: number, opts?: TensorOptions): Tensor {
  const dtype = opts?.dtype ?? 'float32';
  const data = allocArray(dtype, steps);
  const step = steps > 1 ? (end - start) / (steps - 1) : 0;
  // PyTorch fills the second half from the end so the last value is exact.
  const half = Math.floor(steps / 2);
  for (let i = 0; i < steps; i++) data[i] = i < half ? start + step * i : end - step * (steps - 1 - i);
  return finishCreation(upload('linspace', data, [steps], dtype, getBackend(opts?.device)), opts);
}

/** The n×m identity (m defaults to n). */
export function eye(n: number, m = n, opts?: TensorOptions): Tensor {
  const dtype = opts?.dtype ?? 'float32';
  const data = allocArray(dtype, n * m);
  for (let i = 0; i < Math.min(n, m); i++) data[i * m + i] = 1;
  return finishCreation(upload('eye', data, checkShape('eye', [n, m]), dtype, getBackend(opts?.device)), opts);
}

/** Options of the random creation functions. */
export interface RandomOptions extends TensorOptions {
  /** The seeded generator to draw from. Default: the global one (manualSeed). */
  generator?: Generator;
}

function randomTensor(op: string, shape: readonly number[], opts: RandomOptions | undefined, draw: (g: Generator) => number, defaultDtype: DType = 'float32'): Tensor {
  const s = checkShape(op, shape);
  const dtype = opts?.dtype ?? defaultDtype;
  const gen = opts?.generator ?? defaultGenerator;
  const data = allocArray(dtype, numel(s));
  for (let i = 0; i < data.length; i++) data[i] = draw(gen);
  return finishCreation(upload(op, data, s, dtype, getBackend(opts?.device)), opts);
}

/** Uniform [0, 1) samples from the seeded generator. */
export function rand(shape: readonly number[], opts?: RandomOptions): Tensor {
  return randomTensor('rand', shape, opts, (g) => g.random());
}

/** Standard normal samples from the seeded generator. */
export function randn(shape: readonly number[], opts?: RandomOptions): Tensor {
  return randomTensor('randn', shape, opts, (g) => g.normal());
}

/** Integers uniform in [low, high) (int32 unless dtype says otherwise). */
export function randint(low: number, high: number, shape: readonly number[], opts?: RandomOptions): Tensor {
  if (!(high > low)) throw new KilnError('randint', `expected low < high, got low=${low}, high=${high}`);
  if (opts?.dtype === 'bool') throw new DTypeError('randint', 'bool is not a valid dtype for randint');
  return randomTensor('randint', shape, opts, (g) => g.int(low, high), 'int32');
}

/** Uniform [0,1) samples with t's shape, dtype and device. */
export function randLike(t: Tensor, opts?: RandomOptions): Tensor {
  return rand(t.shape, likeOpts(t, opts));
}

/** Standard normal samples with t's shape, dtype and device. */
export function randnLike(t: Tensor, opts?: RandomOptions): Tensor {
  return randn(t.shape, likeOpts(t, opts));
}

/** Integers in [low, high) with t's shape and device. */
export function randintLike(t: Tensor, low: number, high: number, opts?: RandomOptions): Tensor {
  return randint(low, high, t.shape, { device: t.device, ...opts });
}

/** An uninitialised tensor (contents unspecified), as torch.empty. */
export function emptyTensor(shape: readonly number[], opts?: TensorOptions): Tensor {
  return finishCreation(empty(shape, opts?.dtype ?? 'float32', getBackend(opts?.device), 'empty'), opts);
}
