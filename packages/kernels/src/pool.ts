/**
 * GPU memory: every tensor storage is a GPUBuffer from a size-bucketed pool.
 * Buckets are power-of-two-ish (four steps per octave, so at most 25% waste);
 * a released buffer goes back to its bucket and serves the next allocation
 * of that bucket. Nothing is destroyed until the backend is.
 *
 * Reusing a buffer that still has queued work is safe: WebGPU executes
 * queue operations in order, so later-encoded work cannot overtake earlier
 * reads. Only `queue.writeBuffer` jumps ahead of encoded-but-unsubmitted
 * passes, which the runtime handles (see Runtime.write).
 *
 * Limits are checked here, before the device sees a request: a buffer
 * larger than the adapter can bind, or one that would take the pool past
 * its optional memory cap, fails with a BackendError giving the size and
 * the limit (the caller adds the op).
 */
import { BackendError, type BackendStorage, type DType } from '@kiln/core';

/** A Kiln tensor's storage on the GPU: `size` elements, one 32-bit word each. */
export class GPUStorage implements BackendStorage {
  /** False after release(); guards against use-after-release. */
  live = true;
  /** A storage of `size` elements of `dtype` in `buffer` (the backend's alloc makes these). */
  constructor(
    /** Number of elements. */
    readonly size: number,
    /** Element type. */
    readonly dtype: DType,
    /** The pooled buffer; its byteLength is the bucket size (>= 4 * size). */
    readonly buffer: GPUBuffer,
  ) {}
}

/** The bucket a request of `bytes` is served from. */
export function bucketBytes(bytes: number): number {
  if (bytes <= 256) return 256;
  const octave = 2 ** Math.floor(Math.log2(bytes - 1));
  const step = octave / 4;
  return Math.ceil(bytes / step) * step;
}

/** `n` bytes as an exact count and in MiB, for error messages. */
export function fmtBytes(n: number): string {
  return `${n} bytes (${(n / 2 ** 20).toFixed(1)} MiB)`;
}

/** Free lists of GPUBuffers keyed by bucket size, for one usage. */
export class BufferPool {
  private readonly free = new Map<number, GPUBuffer[]>();
  bytesPooled = 0;
  bytesInUse = 0;
  /** High-water mark of bytesInUse since creation or the last resetPeak() (torch.cuda.max_memory_allocated). */
  peakBytesInUse = 0;
  created = 0;
  /**
   * Most bytes the pool may hold, in use plus pooled (Infinity: no cap).
   * Past it, pooled buffers are destroyed first; then the request fails.
   */
  memoryCap = Infinity;
  /**
   * Called before pooled buffers are destroyed: a free buffer may still be
   * read by encoded, unsubmitted work, which must be submitted first (a
   * destroyed buffer cannot be submitted; submitted work keeps it alive).
   */
  beforeTrim: () => void = () => {};

  constructor(
    private readonly device: GPUDevice,
    private readonly usage: GPUBufferUsageFlags,
    private readonly label: string,
    /** The largest buffer the device can create and bind (bytes), and the limits that set it. */
    private readonly maxBytes = Infinity,
    private readonly maxBytesLimit = 'maxBufferSize',
  ) {}

  /** A buffer of at least `bytes` (bucketed), from the free list when possible. */
  acquire(bytes: number): GPUBuffer {
    let size = bucketBytes(bytes);
    if (size > this.maxBytes) {
      if (bytes > this.maxBytes) {
        throw new BackendError('alloc', `${fmtBytes(bytes)} exceeds the largest buffer this WebGPU adapter can bind: ${this.maxBytesLimit} = ${fmtBytes(this.maxBytes)}`);
      }
      size = Math.ceil(bytes / 16) * 16; // fits, but its bucket would not
    }
    const list = this.free.get(size);
    let buffer = list?.pop();
    if (buffer) {
      this.bytesPooled -= size;
    } else {
      if (this.bytesInUse + this.bytesPooled + size > this.memoryCap) this.trim();
      if (this.bytesInUse + size > this.memoryCap) {
        throw new BackendError('alloc', `${fmtBytes(size)} more would take GPU memory past the memory cap of ${fmtBytes(this.memoryCap)}: ${fmtBytes(this.bytesInUse)} are held by live tensors`);
      }
      buffer = this.device.createBuffer({ size, usage: this.usage, label: `${this.label}-${size}` });
      this.created++;
    }
    this.bytesInUse += size;
    if (this.bytesInUse > this.peakBytesInUse) this.peakBytesInUse = this.bytesInUse;
    return buffer;
  }

  /** Starts a new high-water mark from the bytes in use now. */
  resetPeak(): void {
    this.peakBytesInUse = this.bytesInUse;
  }

  /** Destroys the pooled (free) buffers, returning their memory to the device. */
  trim(): void {
    if (this.bytesPooled > 0) this.beforeTrim();
    for (const list of this.free.values()) for (const b of list) b.destroy();
    this.free.clear();
    this.bytesPooled = 0;
  }

  /** Returns `buffer` to its bucket. */
  recycle(buffer: GPUBuffer): void {
    const size = buffer.size;
    let list = this.free.get(size);
    if (!list) this.free.set(size, (list = []));
    list.push(buffer);
    this.bytesInUse -= size;
    this.bytesPooled += size;
  }

  /** Destroys every pooled buffer (live ones die with the device). */
  destroy(): void {
    this.trim();
  }
}
