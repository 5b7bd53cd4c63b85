// The pruning methods of torch.nn.utils.prune. Each computes its mask on
// the host (see host.ts) with PyTorch's counts; where PyTorch's topk leaves
// ties unspecified Kiln prunes the lowest index first.
import { KilnError, ShapeError, defaultGenerator, type Generator, type Tensor } from '@kiln/core';
import { countToPrune, validateAmount, type PruneAmount } from './amount.js';
import { BasePruningMethod, type PruningType } from './base.js';
import { channelNorms, flagLargest, flagSmallest, fromHost, toHost, type HostArray } from './host.js';

/** Zeroes `mask` where `flags` is set. */
function zeroFlagged(mask: Float32Array, flags: Uint8Array): void {
  for (let i = 0; i < flags.length; i++) if (flags[i]) mask[i] = 0;
}

/** Built-in methods compute on the host; this is their public, tensor-level computeMask. */
abstract class HostPruningMethod extends BasePruningMethod {
  abstract override _computeMaskHost(t: HostArray, defaultMask: HostArray): Float32Array;
  /** False for methods whose mask does not depend on the scores (Identity, CustomFromMask): they are not read back. */
  protected readonly readsScores: boolean = true;

  /** The mask of `t` given `defaultMask` (PyTorch's compute_mask), as a new tensor. */
  override async computeMask(t: Tensor, defaultMask: Tensor): Promise<Tensor> {
    await this._prepare?.();
    const [ht, hm] = await Promise.all([this.readsScores ? toHost(t, this.methodName) : { data: new Float32Array(0), shape: t.shape }, toHost(defaultMask, this.methodName)]);
    if (t.shape.join() !== hm.shape.join()) throw new ShapeError(this.methodName, `default_mask [${hm.shape.join(', ')}] does not match the tensor [${ht.shape.join(', ')}]`);
    return fromHost({ data: this._computeMaskHost(ht, hm), shape: ht.shape }, defaultMask);
  }
}

/** Leaves every entry (torch.nn.utils.prune.Identity): the mask stays what it was. */
export class Identity extends HostPruningMethod {
  static override readonly PRUNING_TYPE: PruningType = 'unstructured';
  protected override readonly readsScores = false;
  /** The identity method; it takes no options. */
  constructor(_options: Record<string, never> = {}) {
    super();
  }
  /** @internal */
  override _computeMaskHost(_t: HostArray, defaultMask: HostArray): Float32Array {
    return defaultMask.data.slice();
  }
}

/** Options of the unstructured methods. */
export interface UnstructuredOptions {
  /** Entries to prune: an integer count or a fraction (see {@link PruneAmount}). */
  amount: PruneAmount;
}

/** Prunes the `amount` entries of smallest |value| (torch.nn.utils.prune.L1Unstructured). */
export class L1Unstructured extends HostPruningMethod {
  static override readonly PRUNING_TYPE: PruningType = 'unstructured';
  /** How much this method prunes (see {@link PruneAmount}). */
  readonly amount: PruneAmount;
  /** @throws KilnError when `options.amount` is not a fraction in [0, 1] or a non-negative integer count. */
  constructor(options: UnstructuredOptions) {
    super();
    validateAmount('L1Unstructured', options?.amount);
    this.amount = options.amount;
  }
  /** @internal */
  override _computeMaskHost(t: HostArray, defaultMask: HostArray): Float32Array {
    const k = countToPrune(this.methodName, this.amount, t.data.length);
    const mask = defaultMask.data.slice();
    const abs = new Float32Array(t.data.length);
    for (let i = 0; i < abs.length; i++) abs[i] = Math.abs(t.data[i]!);
    zeroFlagged(mask, flagSmallest(abs, k));
    return mask;
  }
}

/** Options of the random methods. */
export interface RandomOptions {
  /** Draws from this generator instead of the default one (seeded by manualSeed). */
  generator?: Generator;
}

/**
 * Prunes `amount` entries chosen at random (torch.nn.utils.prune.RandomUnstructured):
 * each entry draws a uniform number from Kiln's seeded generator and the
 * largest draws are pruned, so a seed gives one mask on every backend.
 */
export class RandomUnstructured extends HostPruningMethod {
  static override readonly PRUNING_TYPE: PruningType = 'unstructured';
  /** How much this method prunes (see {@link PruneAmount}). */
  readonly amount: PruneAmount;
  /** Where the random draws come from. */
  readonly generator: Generator;
  /** @throws KilnError when `options.amount` is not a fraction in [0, 1] or a non-negative integer count. */
  constructor(options: UnstructuredOptions & RandomOptions) {
    super();
    validateAmount('RandomUnstructured', options?.amount);
    this.amount = options.amount;
    this.generator = options.generator ?? defaultGenerator;
  }
  /** @internal */
  override _computeMaskHost(t: HostArray, defaultMask: HostArray): Float32Array {
    const k = countToPrune(this.methodName, this.amount, t.data.length);
    const mask = defaultMask.data.slice();
    if (k === 0) return mask;
    const prob = new Float64Array(t.data.length);
    for (let i = 0; i < prob.length; i++) prob[i] = this.generator.random();
    zeroFlagged(mask, flagLargest(prob, k));
    return mask;
  }
}

function checkStructured(method: string, t: HostArray, dim: number): number {
  if (t.shape.length <= 1) {
    throw new ShapeError(method, `Structured pruning can only be applied to multidimensional tensors. Found tensor of shape [${t.shape.join(', ')}] with ${t.shape.length} dims`);
  }
  const d = dim < 0 ? dim + t.shape.length : dim;
  if (!Number.isInteger(d) || d < 0 || d >= t.shape.length) throw new ShapeError(method, `dim=${dim} is out of range for a tensor of ${t.shape.length} dims`);
  return d;
}

/** `mask` with the slices `pruned` along `dim` zeroed, times `defaultMask` (what PyTorch's make_mask and `mask *= default_mask` give). */
function maskChannels(defaultMask: HostArray, dim: number, pruned: Uint8Array): Float32Array {
  const out = defaultMask.data.slice();
  const [outer, size, inner] = [defaultMask.shape.slice(0, dim).reduce((p, s) => p * s, 1), defaultMask.shape[dim]!, defaultMask.shape.slice(dim + 1).reduce((p, s) => p * s, 1)];
  for (let a = 0; a < outer; a++) for (let c = 0; c < size; c++) if (pruned[c]) out.fill(0, (a * size + c) * inner, (a * size + c + 1) * inner);
  return out;
}

/** Options of {@link LnStructured}. */
export interface LnStructuredOptions {
  /** Slices along `dim` to prune: an integer count or a fraction of the slices. */
  amount: PruneAmount;
  /** The norm ranking the slices: 1, 2, any p > 0, Infinity, -Infinity, or 'fro' (= 2). */
  n: number | 'fro';
  /** The dim whose slices (channels) are pruned; 0 = output channels of a conv. */
  dim?: number;
}

/**
 * Prunes whole slices along `dim` with the smallest Ln norm
 * (torch.nn.utils.prune.LnStructured), e.g. conv output channels with dim 0.
 */
export class LnStructured extends HostPruningMethod {
  static override readonly PRUNING_TYPE: PruningType = 'structured';
  /** How much this method prunes (see {@link PruneAmount}). */
  readonly amount: PruneAmount;
  /** The norm ranking the slices (p; Infinity / -Infinity for max / min |x|). */
  readonly n: number;
  /** The dim whose slices are pruned. */
  readonly dim: number;
  /** @throws KilnError when `options.amount` is not a fraction in [0, 1] or a non-negative integer count, or `options.n` is not 1, 2, p > 0, Infinity, -Infinity or 'fro'. */
  constructor(options: LnStructuredOptions) {
    super();
    validateAmount('LnStructured', options?.amount);
    const n = options.n === 'fro' ? 2 : options.n;
    if (typeof n !== 'number' || Number.isNaN(n) || n === 0 || (Number.isFinite(n) && n < 0)) {
      throw new KilnError('LnStructured', `n=${String(options.n)} is not a supported norm (1, 2, p > 0, Infinity, -Infinity or 'fro')`);
    }
    this.amount = options.amount;
    this.n = n;
    this.dim = options.dim ?? -1;
  }
  /** @internal */
  override _computeMaskHost(t: HostArray, defaultMask: HostArray): Float32Array {
    const dim = checkStructured(this.methodName, t, this.dim);
    const k = countToPrune(this.methodName, this.amount, t.shape[dim]!);
    if (k === 0) return defaultMask.data.slice();
    return maskChannels(defaultMask, dim, flagSmallest(channelNorms(t, dim, this.n), k));
  }
}

/** Options of {@link RandomStructured}. */
export interface RandomStructuredOptions extends RandomOptions {
  /** Slices along `dim` to prune: an integer count or a fraction of the slices. */
  amount: PruneAmount;
  /** The dim whose slices are pruned. */
  dim?: number;
}

/** Prunes `amount` whole slices along `dim` chosen at random (torch.nn.utils.prune.RandomStructured), from Kiln's seeded generator. */
export class RandomStructured extends HostPruningMethod {
  static override readonly PRUNING_TYPE: PruningType = 'structured';
  /** How much this method prunes (see {@link PruneAmount}). */
  readonly amount: PruneAmount;
  /** The dim whose slices are pruned. */
  readonly dim: number;
  /** Where the random draws come from. */
  readonly generator: Generator;
  /** @throws KilnError when `options.amount` is not a fraction in [0, 1] or a non-negative integer count. */
  constructor(options: RandomStructuredOptions) {
    super();
    validateAmount('RandomStructured', options?.amount);
    this.amount = options.amount;
    this.dim = options.dim ?? -1;
    this.generator = options.generator ?? defaultGenerator;
  }
  /** @internal */
  override _computeMaskHost(t: HostArray, defaultMask: HostArray): Float32Array {
    const dim = checkStructured(this.methodName, t, this.dim);
    const size = t.shape[dim]!;
    const k = countToPrune(this.methodName, this.amount, size);
    if (k === 0) return defaultMask.data.slice();
    const prob = new Float64Array(size);
    for (let c = 0; c < size; c++) prob[c] = this.generator.random();
    return maskChannels(defaultMask, dim, flagSmallest(prob, k));
  }
}

/** Options of {@link CustomFromMask}. */
export interface CustomFromMaskOptions {
  /** 1 keeps an entry, 0 prunes it; the tensor's shape. */
  mask: Tensor;
}

/** Prunes where a given mask is 0 (torch.nn.utils.prune.CustomFromMask): the new mask is `defaultMask * mask`. */
export class CustomFromMask extends HostPruningMethod {
  static override readonly PRUNING_TYPE: PruningType = 'global';
  protected override readonly readsScores = false;
  /** The mask given (null when built from host values by globalUnstructured). */
  readonly mask: Tensor | null;
  private hostMask: HostArray | null = null;
  /**
   * From `{ mask }` (a Tensor of the pruned tensor's shape), or from `{ hostMask }` (host values, as globalUnstructured builds it).
   * @throws KilnError when `mask` is not a Tensor.
   */
  constructor(options: CustomFromMaskOptions | { hostMask: HostArray }) {
    super();
    if ('hostMask' in (options ?? {})) {
      this.mask = null;
      this.hostMask = (options as { hostMask: HostArray }).hostMask;
      return;
    }
    const mask = (options as CustomFromMaskOptions)?.mask;
    if (!mask || !(mask as { _isKilnTensor?: boolean })._isKilnTensor) throw new KilnError('CustomFromMask', 'mask must be a Tensor');
    this.mask = mask;
  }
  /** @internal Reads the mask back once. */
  override async _prepare(): Promise<void> {
    if (this.hostMask || !this.mask) return;
    const m = this.mask.dtype === 'float32' ? this.mask : this.mask.to('float32');
    try {
      this.hostMask = await toHost(m, this.methodName);
    } finally {
      if (m !== this.mask) m.dispose();
    }
  }
  /** @internal */
  override _computeMaskHost(_t: HostArray, defaultMask: HostArray): Float32Array {
    const m = this.hostMask;
    if (!m) throw new KilnError(this.methodName, 'computeMask must read the mask first');
    if (m.shape.join() !== defaultMask.shape.join()) throw new ShapeError(this.methodName, `mask [${m.shape.join(', ')}] does not match the tensor [${defaultMask.shape.join(', ')}]`);
    const out = new Float32Array(defaultMask.data.length);
    for (let i = 0; i < out.length; i++) out[i] = defaultMask.data[i]! * m.data[i]!;
    return out;
  }
}

