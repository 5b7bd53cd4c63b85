// Host-side pieces of mask computation. Choosing which entries to prune is
// data-dependent selection (PyTorch's topk): Kiln reads the importance
// scores back once, selects on the host in O(n) and uploads the mask, so the
// same rule (and for random methods the same seeded draws) holds on every
// backend.
import { DTypeError, fromArray, type Tensor } from '@kiln/core';

/** A tensor's values on the host, row-major, with its shape. */
export interface HostArray {
  data: Float32Array;
  shape: readonly number[];
}

/** Reads `t` back (float32 values). */
export async function toHost(t: Tensor, op: string): Promise<HostArray> {
  if (t.dtype !== 'float32') throw new DTypeError(op, `pruning works on float32 tensors, got ${t.dtype}`);
  const data = await t.toArray();
  return { data: data instanceof Float32Array ? data : Float32Array.from(data as ArrayLike<number>), shape: t.shape };
}

/** `h` as a tensor of `like`'s dtype on `like`'s device. */
export function fromHost(h: HostArray, like: Tensor): Tensor {
  return fromArray(h.data, h.shape, { dtype: like.dtype, device: like.device });
}

/**
 * Flags (1) the `k` smallest of `values`; equal values are taken lowest
 * index first, so the choice is deterministic (PyTorch's topk leaves the
 * order of ties unspecified). NaN counts as larger than every number.
 * Linear time: quickselect for the k-th value, then one pass.
 */
export function flagSmallest(values: ArrayLike<number>, k: number): Uint8Array {
  const n = values.length;
  const flags = new Uint8Array(n);
  if (k <= 0) return flags;
  if (k >= n) return flags.fill(1);
  const work = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const v = values[i]!;
    work[i] = v !== v ? Infinity : v; // NaN ranks last
  }
  const keys = work.slice();
  const threshold = kthSmallest(work, k - 1);
  let taken = 0;
  for (let i = 0; i < n; i++) {
    if (keys[i]! < threshold) {
      flags[i] = 1;
      taken++;
    }
  }
  for (let i = 0; i < n && taken < k; i++) {
    if (keys[i] === threshold) {
      flags[i] = 1;
      taken++;
    }
  }
  return flags;
}

/** Flags the `k` largest of `values`, ties lowest index first (NaN largest). */
export function flagLargest(values: ArrayLike<number>, k: number): Uint8Array {
  const neg = new Float64Array(values.length);
  for (let i = 0; i < values.length; i++) neg[i] = Number.isNaN(values[i]!) ? -Infinity : -values[i]!;
  return flagSmallest(neg, k);
}

/** The value of rank `r` (0-based) of `a` in ascending order; reorders `a`. Three-way partitioning keeps many equal values linear. */
function kthSmallest(a: Float64Array, r: number): number {
  let lo = 0;
  let hi = a.length - 1;
  let seed = 0x9e3779b9;
  while (lo < hi) {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    const pivot = a[lo + (seed % (hi - lo + 1))]!;
    // [lo, lt) < pivot, [lt, i) == pivot, (gt, hi] > pivot
    let lt = lo;
    let gt = hi;
    let i = lo;
    while (i <= gt) {
      const v = a[i]!;
      if (v < pivot) {
        a[i] = a[lt]!;
        a[lt++] = v;
        i++;
      } else if (v > pivot) {
        a[i] = a[gt]!;
        a[gt--] = v;
      } else i++;
    }
    if (r < lt) hi = lt - 1;
    else if (r > gt) lo = gt + 1;
    else return pivot;
  }
  return a[lo]!;
}

/** Elements per index of `dim` and the strides to walk it: [outer, size, inner]. */
export function splitAt(shape: readonly number[], dim: number): [number, number, number] {
  const outer = shape.slice(0, dim).reduce((p, s) => p * s, 1);
  const inner = shape.slice(dim + 1).reduce((p, s) => p * s, 1);
  return [outer, shape[dim]!, inner];
}

/** The slices `channels` of `h` along `dim`, concatenated in order (t[..., channels, ...]). */
export function gatherChannels(h: HostArray, dim: number, channels: readonly number[]): HostArray {
  const [outer, size, inner] = splitAt(h.shape, dim);
  const data = new Float32Array(outer * channels.length * inner);
  let o = 0;
  for (let a = 0; a < outer; a++) {
    for (const c of channels) {
      const from = (a * size + c) * inner;
      data.set(h.data.subarray(from, from + inner), o);
      o += inner;
    }
  }
  const shape = [...h.shape];
  shape[dim] = channels.length;
  return { data, shape };
}

/** Writes `part` (gathered by {@link gatherChannels} with the same channels) back into `h`. */
export function scatterChannels(h: HostArray, dim: number, channels: readonly number[], part: Float32Array): void {
  const [outer, size, inner] = splitAt(h.shape, dim);
  let o = 0;
  for (let a = 0; a < outer; a++) {
    for (const c of channels) {
      h.data.set(part.subarray(o, o + inner), (a * size + c) * inner);
      o += inner;
    }
  }
}

/** Per index of `dim`: whether any element of that slice is nonzero. */
export function nonzeroChannels(h: HostArray, dim: number): boolean[] {
  const [outer, size, inner] = splitAt(h.shape, dim);
  const keep = new Array<boolean>(size).fill(false);
  for (let a = 0; a < outer; a++) {
    for (let c = 0; c < size; c++) {
      if (keep[c]) continue;
      const from = (a * size + c) * inner;
      for (let i = from; i < from + inner; i++) {
        if (h.data[i] !== 0) {
          keep[c] = true;
          break;
        }
      }
    }
  }
  return keep;
}

/**
 * The Ln norm of each slice of `h` along `dim` over all other dims (what
 * torch.norm(t, p=n, dim=other dims) gives), accumulated in float64.
 */
export function channelNorms(h: HostArray, dim: number, n: number): Float64Array {
  const [outer, size, inner] = splitAt(h.shape, dim);
  const acc = new Float64Array(size).fill(n === Infinity ? 0 : n === -Infinity ? Infinity : 0);
  for (let a = 0; a < outer; a++) {
    for (let c = 0; c < size; c++) {
      const from = (a * size + c) * inner;
      let s = acc[c]!;
      for (let i = from; i < from + inner; i++) {
        const v = Math.abs(h.data[i]!);
        if (n === Infinity) s = Math.max(s, v);
        else if (n === -Infinity) s = Math.min(s, v);
        else if (n === 1) s += v;
        else if (n === 2) s += v * v;
        else s += v ** n;
      }
      acc[c] = s;
    }
  }
  if (Number.isFinite(n) && n !== 1) for (let c = 0; c < size; c++) acc[c] = n === 2 ? Math.sqrt(acc[c]!) : acc[c]! ** (1 / n);
  return acc;
}
