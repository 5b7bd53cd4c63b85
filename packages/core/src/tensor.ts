import type { View } from './backend.js';
import type { DType, TensorValues, TypedArray } from './dtype.js';
import { DTYPES, isFloating } from './dtype.js';
import { decodeHalf } from './float16.js';
import { AutogradError, DisposedError, KilnError, BackendError, ShapeError } from './errors.js';
import { StorageRef } from './storage.js';
import { isContiguous, numel, contiguousStrides } from './shape.js';
import { trackTensor, untrackTensor, tidy } from './memory.js';
import { Node, type GradHook, type GradHookHandle } from './autograd/node.js';
import { needsGrad } from './autograd/record.js';
import { isTracing, traceAssign } from './ops/trace.js';
import { runBackward } from './autograd/engine.js';
import { getBackend } from './backend.js';
import * as un from './ops/unary.js';
import * as bin from './ops/binary.js';
import * as vw from './ops/views.js';
import * as red from './ops/reduce.js';
import * as idx from './ops/indexing.js';
import { matmul } from './ops/matmul.js';
import type { TensorOrScalar } from './ops/util.js';
import { empty } from './ops/util.js';
import type { Dims, ValuesIndices, VarOptions } from './ops/reduce.js';
import { ones } from './ops/creation.js';

/** Safety net: a tensor garbage-collected without dispose() still returns its memory. */
const finalizer = new FinalizationRegistry<StorageRef>((s) => s.release());

/** Nested number arrays, as tolist() returns them. */
export type NestedList = number | boolean | NestedList[];

/**
 * An n-dimensional array on a backend, with autograd. Views share storage;
 * `dispose()` (or tidy / `using`) frees memory deterministically.
 */
export class Tensor {
  /** Marks Kiln tensors without instanceof (safe across duplicated module copies). */
  readonly _isKilnTensor = true;
  /** Sizes of each dim. */
  readonly shape: readonly number[];
  /** Elements to skip per step along each dim. */
  readonly strides: readonly number[];
  /** Element offset of [0, ..., 0] in storage. */
  readonly offset: number;
  /** The element type: float32, float16, int32, int8, uint8 or bool. */
  readonly dtype: DType;
  /** The accumulated gradient (leaves, and non-leaves after retainGrad()). */
  grad: Tensor | null = null;
  /** @internal */ _storage: StorageRef;
  /** @internal */ _hooks: GradHook[] = [];
  /** @internal the tensor whose storage this view shares, for in-place checks. */
  _base: Tensor | null = null;
  private _gradFn: Node | null = null;
  private _requiresGrad = false;
  private _disposed = false;
  private _internal = false;

  private constructor(storage: StorageRef, shape: readonly number[], strides: readonly number[], offset: number, dtype: DType, internal: boolean) {
    this._storage = storage;
    this.shape = shape;
    this.strides = strides;
    this.offset = offset;
    this.dtype = dtype;
    this._internal = internal;
    if (!internal) trackTensor(this);
    finalizer.register(this, storage, this);
  }

  /** @internal A tensor taking ownership of one reference to `storage`. */
  static _fromStorage(storage: StorageRef, shape: readonly number[], strides: readonly number[], offset: number, dtype: DType): Tensor {
    return new Tensor(storage, shape, strides, offset, dtype, false);
  }

  /** @internal A view sharing this tensor's storage. */
  _viewOf(shape: readonly number[], strides: readonly number[], offset: number): Tensor {
    const t = new Tensor(this._storage.retain(), shape, strides, offset, this.dtype, false);
    t._base = this._base ?? this;
    return t;
  }

  /** @internal An untracked alias kept by autograd for backward. */
  _savedAlias(): Tensor {
    this._checkAlive('autograd');
    return new Tensor(this._storage.retain(), this.shape, this.strides, this.offset, this.dtype, true);
  }

  /** A new tensor object sharing storage, shape and strides (no autograd link). */
  alias(): Tensor {
    this._checkAlive('alias');
    return new Tensor(this._storage.retain(), this.shape, this.strides, this.offset, this.dtype, false);
  }

  /** @internal Releases an internal alias. */
  _releaseInternal(): void {
    if (this._disposed) return;
    this._disposed = true;
    finalizer.unregister(this);
    this._storage.release();
  }

  /** @internal Throws if disposed. */
  _checkAlive(op: string): void {
    if (this._disposed) throw new DisposedError(op, `tensor of shape [${this.shape.join(', ')}] (${this.dtype}, ${this.device}) was used after dispose()`);
  }

  /** @internal How a backend primitive sees this tensor. */
  _view(): View {
    this._checkAlive('view');
    return { storage: this._storage.data, dtype: this.dtype, shape: this.shape, strides: this.strides, offset: this.offset };
  }

  /** @internal */
  _setGradFn(node: Node | null): void {
    this._gradFn?.unref();
    this._gradFn = node;
  }

  /**
   * @internal Runs an in-place op: `direct` writes into this storage when no
   * autograd is involved; otherwise `outOfPlace(self)` computes the result
   * with its graph, and the result is copied in and becomes this tensor's
   * history. `self` is a snapshot of this tensor when the op's backward
   * reads its input (`savesSelf`, the default), else this tensor itself:
   * the op reads it into a new tensor before anything overwrites it.
   */
  _inPlace(op: string, operands: readonly unknown[], outOfPlace: (self: Tensor) => Tensor, direct: () => void, savesSelf = true): this {
    this._checkAlive(op);
    if (!needsGrad(this, ...operands)) {
      if (isTracing()) return this._inPlaceTraced(op, outOfPlace);
      direct();
      this._storage.bumpVersion();
      return this;
    }
    if (this.isLeaf && this._requiresGrad) {
      throw new AutogradError(op, 'a leaf Variable that requires grad is being used in an in-place operation');
    }
    if (this._base) throw new AutogradError(op, 'in-place operations on views are not supported when the result requires grad; use the out-of-place op');
    // A formula that saves the original value (mul_, div_) reads a snapshot,
    // so it keeps that value even though this storage is overwritten.
    const original = savesSelf ? this.clone() : this;
    const r = outOfPlace(original);
    if (original !== this) original.dispose();
    this._storage.backend.copy(r._view(), this._view());
    this._storage.bumpVersion();
    const node = r.gradFn;
    // A formula that reads the result (relu_, exp_) keeps this storage, not a second copy in r's.
    node?._resaveInto(r, this);
    if (node) node.refs++;
    this._setGradFn(node);
    traceAssign(this, r, op);
    r.dispose();
    return this;
  }

  /** An in-place op under a tracer: traced as the value it produces, then written into this storage. */
  private _inPlaceTraced(op: string, outOfPlace: (self: Tensor) => Tensor): this {
    const r = outOfPlace(this);
    this._storage.backend.copy(r._view(), this._view());
    this._storage.bumpVersion();
    traceAssign(this, r, op);
    r.dispose();
    return this;
  }

  // ---------------------------------------------------------------- info

  /** The backend name: 'cpu', 'webgpu', ... */
  get device(): string {
    return this._storage.backend.name;
  }

  /** Number of dims. */
  dim(): number {
    return this.shape.length;
  }

  /** Number of dims (PyTorch's ndim). */
  get ndim(): number {
    return this.shape.length;
  }

  /** Size of one dim, or the whole shape. */
  size(): number[];
  size(dim: number): number;
  size(dim?: number): number | number[] {
    if (dim === undefined) return [...this.shape];
    const d = dim < 0 ? dim + this.dim() : dim;
    if (d < 0 || d >= this.dim()) throw new KilnError('size', `dimension out of range (expected to be in range of [${-this.dim()}, ${this.dim() - 1}], but got ${dim})`);
    return this.shape[d]!;
  }

  /** Number of elements. */
  numel(): number {
    return numel(this.shape);
  }

  /** True when the layout is row-major without gaps. */
  isContiguous(): boolean {
    return isContiguous(this.shape, this.strides);
  }

  /** True after dispose(). */
  get isDisposed(): boolean {
    return this._disposed;
  }

  /** Number of in-place modifications of the underlying storage (PyTorch's _version). */
  get version(): number {
    return this._storage.version;
  }

  /**
   * Identifies the memory this tensor views (PyTorch's data_ptr in spirit):
   * equal for views of one storage, different after set_() re-points it.
   * Not an address.
   */
  dataPtr(): number {
    return this._storage.id;
  }

  /** A one-line description: shape, dtype, device, and requiresGrad when set (no values). */
  toString(): string {
    return `Tensor(shape=[${this.shape.join(', ')}], dtype=${this.dtype}, device=${this.device}${this.requiresGrad ? ', requiresGrad=true' : ''})`;
  }

  // ---------------------------------------------------------------- memory

  /** Frees this tensor's reference to its memory now; using it afterwards throws. */
  dispose(): void {
    if (this._disposed) return;
    this._disposed = true;
    if (!this._internal) untrackTensor(this);
    finalizer.unregister(this);
    this._setGradFn(null);
    this._storage.release();
  }

  /** `using t = ...` disposes at the end of the block. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  // ---------------------------------------------------------------- data out

  /** The elements in row-major order as a typed array (bool as 0/1 Uint8Array, float16 as its exact float32 values). */
  async toArray(): Promise<TensorValues> {
    this._checkAlive('toArray');
    const c = this.isContiguous() ? this : this.contiguous();
    try {
      const data = await c._storage.backend.read(c._storage.data, c.offset, this.numel());
      // float16 is stored as bit patterns; callers get the values (exact in float32).
      return this.dtype === 'float16' ? decodeHalf(data as Uint16Array) : (data as TensorValues);
    } finally {
      if (c !== this) c.dispose();
    }
  }

  /** Synchronous read; only for backends with host memory (cpu). */
  dataSync(): TensorValues {
    this._checkAlive('dataSync');
    const backend = this._storage.backend;
    if (!backend.readSync) throw new BackendError('dataSync', `synchronous reads are only possible on the cpu backend, this tensor is on ${this.device}; use await toArray()`);
    const c = this.isContiguous() ? this : this.contiguous();
    const data = backend.readSync(c._storage.data, c.offset, this.numel());
    if (c !== this) c.dispose();
    return this.dtype === 'float16' ? decodeHalf(data as Uint16Array) : (data as TensorValues);
  }

  /** Nested arrays of numbers (booleans for bool), as torch.tolist. */
  async tolist(): Promise<NestedList> {
    const data = await this.toArray();
    const conv = (v: number): number | boolean => (this.dtype === 'bool' ? v !== 0 : v);
    const build = (dim: number, at: number): NestedList => {
      if (dim === this.dim()) return conv(data[at]!);
      const step = numel(this.shape.slice(dim + 1));
      return Array.from({ length: this.shape[dim]! }, (_, i) => build(dim + 1, at + i * step));
    };
    return build(0, 0);
  }

  /** The single value of a one-element tensor. */
  async item(): Promise<number> {
    if (this.numel() !== 1) throw new ShapeError('item', `a Tensor with ${this.numel()} elements cannot be converted to a scalar`);
    return (await this.toArray())[0]!;
  }

  // ---------------------------------------------------------------- conversion

  /**
   * A copy with another dtype, or on another backend. Moving off a backend
   * without synchronous reads (webgpu -> cpu) needs `await toDevice()`.
   */
  to(target: DType | string): Tensor {
    if ((DTYPES as readonly string[]).includes(target)) return un.cast(this, target as DType);
    if (target === this.device) return this;
    const src = this._storage.backend;
    if (!src.readSync) throw new BackendError('to', `moving a tensor from ${this.device} to ${target} needs a readback: use await tensor.toDevice('${target}')`);
    const dst = getBackend(target);
    const out = empty(this.shape, this.dtype, dst, 'to');
    if (out.numel() > 0) dst.write(out._storage.data, this.dataSync());
    return out;
  }

  /** This tensor as float16 (torch's .half()); the same tensor when it already is. */
  half(): Tensor {
    return un.cast(this, 'float16');
  }

  /** This tensor as float32 (torch's .float()); the same tensor when it already is. */
  float(): Tensor {
    return un.cast(this, 'float32');
  }

  /** A copy on another backend (any direction; awaits a readback when needed). */
  async toDevice(target: string): Promise<Tensor> {
    if (target === this.device) return this;
    const dst = getBackend(target);
    const data = await this.toArray();
    const out = empty(this.shape, this.dtype, dst, 'toDevice');
    if (out.numel() > 0) dst.write(out._storage.data, data);
    if (this.requiresGrad && this.isLeaf) out.requiresGrad_(true);
    return out;
  }

  /** Copy on the cpu backend. */
  async cpu(): Promise<Tensor> {
    return this.toDevice('cpu');
  }

  // ---------------------------------------------------------------- autograd

  /** True when gradients flow to this tensor. */
  get requiresGrad(): boolean {
    return this._requiresGrad || this._gradFn !== null;
  }

  /** Same as requiresGrad_(value): only leaves can change it. */
  set requiresGrad(value: boolean) {
    this.requiresGrad_(value);
  }

  /** Sets requiresGrad on a leaf (throws on non-leaves, as PyTorch). */
  requiresGrad_(value = true): this {
    if (!this.isLeaf) throw new AutogradError('requiresGrad_', 'you can only change requiresGrad flags of leaf variables');
    if (value && !isFloating(this.dtype)) throw new AutogradError('requiresGrad_', `only floating point tensors can require gradients, got ${this.dtype}`);
    this._requiresGrad = value;
    return this;
  }

  /** The node that produced this tensor (null for leaves). */
  get gradFn(): Node | null {
    return this._gradFn;
  }

  /** True for tensors created by the user rather than by a recorded op. */
  get isLeaf(): boolean {
    return this._gradFn === null;
  }

  /** Makes a non-leaf keep its `.grad` after backward. */
  retainGrad(): this {
    if (this._gradFn) this._gradFn.retainTarget = new WeakRef(this);
    else if (!this._requiresGrad) throw new AutogradError('retainGrad', "can't retain_grad on Tensor that has requires_grad=False");
    return this;
  }

  /** Registers a hook called with this tensor's gradient; returning a tensor replaces it. Returns a remover. */
  registerHook(hook: GradHook): GradHookHandle {
    if (!this.requiresGrad) throw new AutogradError('registerHook', "cannot register a hook on a tensor that doesn't require gradient");
    const list = this._gradFn ? this._gradFn.hooks : this._hooks;
    list.push(hook);
    return { remove: () => list.splice(list.indexOf(hook) >>> 0, 1) };
  }

  /** A tensor sharing storage, cut from the graph. */
  detach(): Tensor {
    this._checkAlive('detach');
    const t = new Tensor(this._storage.retain(), this.shape, this.strides, this.offset, this.dtype, false);
    t._base = this._base;
    return t;
  }

  /** Cuts this tensor from the graph in place, making it a leaf. */
  detach_(): this {
    this._setGradFn(null);
    this._requiresGrad = false;
    return this;
  }

  /**
   * Computes gradients of this tensor w.r.t. graph leaves. A non-scalar
   * needs `gradient` (d(output) of the same shape).
   */
  backward(gradient?: Tensor, opts: { retainGraph?: boolean } = {}): void {
    this._checkAlive('backward');
    if (!this.requiresGrad) throw new AutogradError('backward', 'element 0 of tensors does not require grad and does not have a grad_fn');
    let g: Tensor;
    if (gradient === undefined) {
      if (this.numel() !== 1) throw new AutogradError('backward', `grad can be implicitly created only for scalar outputs, got shape [${this.shape.join(', ')}]`);
      g = ones(this.shape, { device: this.device, dtype: this.dtype });
    } else {
      if (gradient.shape.join() !== this.shape.join()) throw new ShapeError('backward', `gradient has shape [${gradient.shape.join(', ')}], expected [${this.shape.join(', ')}]`);
      g = gradient.alias();
    }
    try {
      runBackward(this, g, opts.retainGraph ?? false);
    } finally {
      g.dispose();
    }
  }

  // ---------------------------------------------------------------- views
  /** A view with the same elements in `shape` (-1 inferred); throws when the strides do not allow one. */
  view(...shape: number[] | [readonly number[]]): Tensor {
    return vw.view(this, flatArgs(shape));
  }
  /** The same elements in `shape` (-1 inferred): a view when the strides allow, else a copy. */
  reshape(...shape: number[] | [readonly number[]]): Tensor {
    return vw.reshape(this, flatArgs(shape));
  }
  /** A view with the dims reordered (torch.permute). */
  permute(...dims: number[] | [readonly number[]]): Tensor {
    return vw.permute(this, flatArgs(dims));
  }
  /** A view with `dim0` and `dim1` swapped. */
  transpose(dim0: number, dim1: number): Tensor {
    return vw.transpose(this, dim0, dim1);
  }
  /** Transpose of a 2-D tensor (reversed dims for other ranks, as .T). */
  get T(): Tensor {
    return vw.permute(this, this.shape.map((_, i) => this.dim() - 1 - i));
  }
  /** The last two dims swapped. */
  get mT(): Tensor {
    if (this.dim() < 2) throw new ShapeError('mT', `tensor.mT is only supported on matrices or batches of matrices, got ${this.dim()}-D tensor`);
    return vw.transpose(this, -2, -1);
  }
  /** A view of start:end:step along `dim` (negative bounds count from the end). */
  slice(dim: number, start?: number, end?: number, step?: number): Tensor {
    return vw.slice(this, dim, start, end, step);
  }
  /** A view of `length` entries along `dim` from `start` (torch.narrow). */
  narrow(dim: number, start: number, length: number): Tensor {
    return vw.narrow(this, dim, start, length);
  }
  /** The view at `index` of `dim`, that dim removed (x[..., index, ...]). */
  select(dim: number, index: number): Tensor {
    return vw.select(this, dim, index);
  }
  /** A broadcast view with size-1 dims repeated to `shape` (-1 keeps a dim); no copy. */
  expand(...shape: number[] | [readonly number[]]): Tensor {
    return vw.expand(this, flatArgs(shape));
  }
  /** expand() to `other`'s shape. */
  expandAs(other: Tensor): Tensor {
    return vw.expand(this, other.shape);
  }
  /** A view without size-1 dims (only `dim` when given). */
  squeeze(dim?: number | readonly number[]): Tensor {
    return vw.squeeze(this, dim);
  }
  /** A view with a size-1 dim inserted at `dim`. */
  unsqueeze(dim: number): Tensor {
    return vw.unsqueeze(this, dim);
  }
  /** Merges dims startDim..endDim (default all) into one; a view when the strides allow. */
  flatten(startDim?: number, endDim?: number): Tensor {
    return vw.flatten(this, startDim, endDim);
  }
  /** Splits `dim` into `sizes` (a view). */
  unflatten(dim: number, sizes: readonly number[]): Tensor {
    return vw.unflatten(this, dim, sizes);
  }
  /** This tensor when already row-major contiguous, else a contiguous copy. */
  contiguous(): Tensor {
    return vw.contiguous(this);
  }
  /** A copy with its own storage; gradients flow back to this tensor. */
  clone(): Tensor {
    return un.clone(this);
  }

  // ---------------------------------------------------------------- unary
  /** -x elementwise. */
  neg(): Tensor { return un.unary('neg', this); }
  /** |x| elementwise. */
  abs(): Tensor { return un.unary('abs', this); }
  /** e^x elementwise. */
  exp(): Tensor { return un.unary('exp', this); }
  /** Natural logarithm elementwise. */
  log(): Tensor { return un.unary('log', this); }
  /** Square root elementwise. */
  sqrt(): Tensor { return un.unary('sqrt', this); }
  /** 1 / sqrt(x) elementwise. */
  rsqrt(): Tensor { return un.unary('rsqrt', this); }
  /** Sine elementwise (radians). */
  sin(): Tensor { return un.unary('sin', this); }
  /** Cosine elementwise (radians). */
  cos(): Tensor { return un.unary('cos', this); }
  /** Hyperbolic tangent elementwise. */
  tanh(): Tensor { return un.unary('tanh', this); }
  /** 1 / (1 + e^-x) elementwise. */
  sigmoid(): Tensor { return un.unary('sigmoid', this); }
  /** max(x, 0) elementwise (NaN stays NaN). */
  relu(): Tensor { return un.unary('relu', this); }
  /** -1, 0 or 1 by the sign of x (0 for NaN). */
  sign(): Tensor { return un.unary('sign', this); }
  /** Largest integer <= x, elementwise. */
  floor(): Tensor { return un.unary('floor', this); }
  /** Smallest integer >= x, elementwise. */
  ceil(): Tensor { return un.unary('ceil', this); }
  /** Round half to even, elementwise. */
  round(): Tensor { return un.unary('round', this); }
  /** x * x elementwise. */
  square(): Tensor { return un.unary('square', this); }
  /** 1 / x elementwise. */
  reciprocal(): Tensor { return un.unary('reciprocal', this); }
  /** Elementwise logical not (zero is false), as a bool tensor. */
  logicalNot(): Tensor { return un.unary('logicalNot', this); }
  /** Limits values to [min, max]; either bound may be omitted. */
  clamp(min?: number | null, max?: number | null): Tensor {
    return un.unary('clamp', this, { min: min ?? undefined, max: max ?? undefined });
  }
  /** True where the value is neither infinite nor NaN. */
  isfinite(): Tensor { return red.isfinite(this); }

  /** In-place neg(). */
  neg_(): this { return un.unaryInPlace('neg', this) as this; }
  /** In-place abs(). */
  abs_(): this { return un.unaryInPlace('abs', this) as this; }
  /** In-place exp(). */
  exp_(): this { return un.unaryInPlace('exp', this) as this; }
  /** In-place log(). */
  log_(): this { return un.unaryInPlace('log', this) as this; }
  /** In-place sqrt(). */
  sqrt_(): this { return un.unaryInPlace('sqrt', this) as this; }
  /** In-place sigmoid(). */
  sigmoid_(): this { return un.unaryInPlace('sigmoid', this) as this; }
  /** In-place tanh(). */
  tanh_(): this { return un.unaryInPlace('tanh', this) as this; }
  /** In-place relu(). */
  relu_(): this { return un.unaryInPlace('relu', this) as this; }
  /** In-place clamp(). */
  clamp_(min?: number | null, max?: number | null): this {
    return un.unaryInPlace('clamp', this, { min: min ?? undefined, max: max ?? undefined }) as this;
  }
  /** Fills with `value` in place. */
  fill_(value: number): this {
    return this._inPlace('fill_', [], (self) => bin.binary('mul', self, 0).add(value), () => {
      if (this.numel() > 0) this._storage.backend.fill(this._view(), value);
    });
  }
  /** Fills with zeros in place. */
  zero_(): this { return this.fill_(0); }
  /** Copies src (broadcast, cast) into this tensor in place. */
  copy_(src: Tensor): this { return un.copyInto(this, src) as this; }

  // ---------------------------------------------------------------- binary
  /** this + other, broadcasting (torch.add). */
  add(other: TensorOrScalar, alpha?: number): Tensor {
    if (alpha === undefined || alpha === 1) return bin.binary('add', this, other);
    return tidy(() => bin.binary('add', this, scaled(other, alpha)));
  }
  /** this - other, broadcasting. */
  sub(other: TensorOrScalar, alpha?: number): Tensor {
    if (alpha === undefined || alpha === 1) return bin.binary('sub', this, other);
    return tidy(() => bin.binary('sub', this, scaled(other, alpha)));
  }
  /** this * other, broadcasting. */
  mul(other: TensorOrScalar): Tensor { return bin.binary('mul', this, other); }
  /** this / other, true division, broadcasting. */
  div(other: TensorOrScalar): Tensor { return bin.binary('div', this, other); }
  /** this ** exponent elementwise, broadcasting. */
  pow(other: TensorOrScalar): Tensor { return bin.binary('pow', this, other); }
  /** Elementwise max with `other`; NaN propagates. */
  maximum(other: TensorOrScalar): Tensor { return bin.binary('maximum', this, other); }
  /** Elementwise min with `other`; NaN propagates. */
  minimum(other: TensorOrScalar): Tensor { return bin.binary('minimum', this, other); }
  /** this == other elementwise, as a bool tensor. */
  eq(other: TensorOrScalar): Tensor { return bin.binary('eq', this, other); }
  /** this != other elementwise, as a bool tensor (true where either is NaN). */
  ne(other: TensorOrScalar): Tensor { return bin.binary('ne', this, other); }
  /** this < other elementwise, as a bool tensor. */
  lt(other: TensorOrScalar): Tensor { return bin.binary('lt', this, other); }
  /** this <= other elementwise, as a bool tensor. */
  le(other: TensorOrScalar): Tensor { return bin.binary('le', this, other); }
  /** this > other elementwise, as a bool tensor. */
  gt(other: TensorOrScalar): Tensor { return bin.binary('gt', this, other); }
  /** this >= other elementwise, as a bool tensor. */
  ge(other: TensorOrScalar): Tensor { return bin.binary('ge', this, other); }
  /** Elementwise logical and (nonzero is true), as a bool tensor. */
  logicalAnd(other: TensorOrScalar): Tensor { return bin.binary('logicalAnd', this, other); }
  /** Elementwise logical or (nonzero is true), as a bool tensor. */
  logicalOr(other: TensorOrScalar): Tensor { return bin.binary('logicalOr', this, other); }
  /** this where cond else other (Tensor.where). */
  where(cond: Tensor, other: TensorOrScalar): Tensor { return bin.where(cond, this, other); }

  /** In-place add(): this += other. */
  add_(other: TensorOrScalar, alpha?: number): this {
    return inPlaceScaled(this, 'add', other, alpha);
  }
  /** In-place sub(): this -= other. */
  sub_(other: TensorOrScalar, alpha?: number): this {
    return inPlaceScaled(this, 'sub', other, alpha);
  }
  /** In-place mul(): this *= other. */
  mul_(other: TensorOrScalar): this { return bin.binaryInPlace('mul', this, other) as this; }
  /** In-place div(): this /= other. */
  div_(other: TensorOrScalar): this { return bin.binaryInPlace('div', this, other) as this; }
  /** In-place pow(). */
  pow_(other: TensorOrScalar): this { return bin.binaryInPlace('pow', this, other) as this; }
  /** In-place maximum(). */
  maximum_(other: TensorOrScalar): this { return bin.binaryInPlace('maximum', this, other) as this; }
  /** In-place minimum(). */
  minimum_(other: TensorOrScalar): this { return bin.binaryInPlace('minimum', this, other) as this; }
  /** this += (value * t1) * t2 in place (torch.addcmul_, ATen's rounding order). */
  addcmul_(t1: Tensor, t2: Tensor, value = 1): this {
    return tidy(() => this.add_(value === 1 ? t1.mul(t2) : t1.mul(value).mul(t2)));
  }
  /** this += (value * t1) / t2 in place (torch.addcdiv_, ATen's rounding order). */
  addcdiv_(t1: Tensor, t2: Tensor, value = 1): this {
    return tidy(() => this.add_(value === 1 ? t1.div(t2) : t1.mul(value).div(t2)));
  }
  /** this += weight * (end - this) in place (torch.lerp_ with a scalar weight). */
  lerp_(end: Tensor, weight: number): this {
    return tidy(() => this.add_(end.sub(this).mul(weight)));
  }
  /**
   * Makes this tensor use `source`'s storage, shape and strides, keeping its
   * identity (torch.Tensor.set_): how Module.to() moves parameters without
   * breaking optimizers that hold them. Not recorded by autograd.
   */
  set_(source: Tensor): this {
    this._checkAlive('set_');
    source._checkAlive('set_');
    if (!this.isLeaf) throw new AutogradError('set_', 'set_ is only allowed on leaf tensors');
    const storage = source._storage.retain();
    this._storage.release();
    finalizer.unregister(this);
    this._storage = storage;
    finalizer.register(this, storage, this);
    const self = this as { shape: readonly number[]; strides: readonly number[]; offset: number; dtype: DType };
    self.shape = source.shape;
    self.strides = source.strides;
    self.offset = source.offset;
    self.dtype = source.dtype;
    this._base = source._base;
    storage.bumpVersion();
    return this;
  }

  // ---------------------------------------------------------------- reductions
  /** Sum over `dim` (all when omitted), keeping reduced dims when `keepdim`. */
  sum(dim?: Dims, keepdim?: boolean): Tensor { return red.sum(this, dim, keepdim); }
  /** Mean over `dim` (all when omitted), keeping reduced dims when `keepdim`. */
  mean(dim?: Dims, keepdim?: boolean): Tensor { return red.mean(this, dim, keepdim); }
  /** The maximum: of all elements without `dim`, else `{ values, indices }` along `dim` (torch.max). */
  max(): Tensor;
  max(dim: number, keepdim?: boolean): ValuesIndices;
  max(dim?: number, keepdim?: boolean): Tensor | ValuesIndices {
    return dim === undefined ? red.max(this) : red.max(this, dim, keepdim);
  }
  /** The minimum: of all elements without `dim`, else `{ values, indices }` along `dim` (torch.min). */
  min(): Tensor;
  min(dim: number, keepdim?: boolean): ValuesIndices;
  min(dim?: number, keepdim?: boolean): Tensor | ValuesIndices {
    return dim === undefined ? red.min(this) : red.min(this, dim, keepdim);
  }
  /** Maximum over `dims` (all when omitted), values only (torch.amax); NaN propagates. */
  amax(dim: number, keepdim = false): Tensor { return red.max(this, dim, keepdim).values; }
  /** Minimum over `dims` (all when omitted), values only (torch.amin); NaN propagates. */
  amin(dim: number, keepdim = false): Tensor { return red.min(this, dim, keepdim).values; }
  /** Index of the largest element along `dim` (flat when omitted); the first wins ties, a NaN wins over numbers. */
  argmax(dim?: number, keepdim?: boolean): Tensor { return red.argmax(this, dim, keepdim); }
  /** Index of the smallest element along `dim` (flat when omitted); the first wins ties, a NaN wins over numbers. */
  argmin(dim?: number, keepdim?: boolean): Tensor { return red.argmin(this, dim, keepdim); }
  /** Variance over `dim` (Bessel-corrected unless `correction: 0`). */
  var(dim?: Dims, opts?: VarOptions): Tensor { return red.variance(this, dim, opts); }
  /** Standard deviation over `dim` (Bessel-corrected unless `correction: 0`). */
  std(dim?: Dims, opts?: VarOptions): Tensor { return red.std(this, dim, opts); }
  /** log(sum(exp(x))) over `dim`, computed stably (torch.logsumexp). */
  logsumexp(dim: Dims, keepdim?: boolean): Tensor { return red.logsumexp(this, dim, keepdim); }
  /** Softmax along `dim`, computed stably (the row max subtracted first). */
  softmax(dim: number): Tensor { return red.softmax(this, dim); }
  /** log(softmax(x)) along `dim`, computed stably. */
  logSoftmax(dim: number): Tensor { return red.logSoftmax(this, dim); }

  // ---------------------------------------------------------------- linear algebra, indexing
  /** Matrix product with torch.matmul's rules (1-D operands, broadcast batch dims). */
  matmul(other: Tensor): Tensor { return matmul(this, other); }
  /** Values at `index` (int32, same rank) along `dim` (torch.gather). */
  gather(dim: number, index: Tensor): Tensor { return idx.gather(this, dim, index); }
  /** A copy with `src` added at `index` along `dim` (torch.scatter_add). */
  scatterAdd(dim: number, index: Tensor, src: Tensor): Tensor { return idx.scatterAdd(this, dim, index, src); }
  /** The entries at a 1-D int32 `index` along `dim` (torch.index_select). */
  indexSelect(dim: number, index: Tensor): Tensor { return idx.indexSelect(this, dim, index); }
  /** A copy with `src` rows added at `index` along `dim` (torch.index_add). */
  indexAdd(dim: number, index: Tensor, src: Tensor): Tensor { return idx.indexAdd(this, dim, index, src); }
  /** Views of `splitSize` entries each (or the given sizes) along `dim` (torch.split). */
  split(sizeOrSections: number | readonly number[], dim?: number): Tensor[] { return idx.split(this, sizeOrSections, dim); }
  /** Splits into `chunks` views along `dim`, the last possibly smaller (torch.chunk). */
  chunk(chunks: number, dim?: number): Tensor[] { return idx.chunk(this, chunks, dim); }
}

function flatArgs(args: number[] | [readonly number[]]): number[] {
  return Array.isArray(args[0]) ? [...(args[0] as readonly number[])] : (args as number[]);
}

function scaled(x: TensorOrScalar, alpha: number): TensorOrScalar {
  return typeof x === 'number' ? x * alpha : x.mul(alpha);
}

function inPlaceScaled<T extends Tensor>(self: T, op: 'add' | 'sub', other: TensorOrScalar, alpha: number | undefined): T {
  if (alpha === undefined || alpha === 1) return bin.binaryInPlace(op, self, other) as T;
  return tidy(() => bin.binaryInPlace(op, self, scaled(other, alpha)) as T);
}

export { contiguousStrides };
