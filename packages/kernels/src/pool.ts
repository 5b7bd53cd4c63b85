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
 */
import type { BackendStorage, DType } from '@kiln/core';

/** A Kiln tensor's storage on the GPU: `size` elements, one 32-bit word each. */
export class GPUStorage implements BackendStorage {
  /** False after release(); guards against use-after-release. */
  live = true;
  constructor(
    readonly size: number,
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

/** Free lists of GPUBuffers keyed by bucket size, for one usage. */
export class BufferPool {
  private readonly free = new Map<number, GPUBuffer[]>();
  bytesPooled = 0;
  bytesInUse = 0;
  created = 0;

  constructor(
    private readonly device: GPUDevice,
    private readonly usage: GPUBufferUsageFlags,
    private readonly label: string,
  ) {}

  /** A buffer of at least `bytes` (bucketed), from the free list when possible. */
  acquire(bytes: number): GPUBuffer {
    const size = bucketBytes(bytes);
    const list = this.free.get(size);
    let buffer = list?.pop();
    if (buffer) {
      this.bytesPooled -= size;
    } else {
      buffer = this.device.createBuffer({ size, usage: this.usage, label: `${this.label}-${size}` });
      this.created++;
    }
    this.bytesInUse += size;
    return buffer;
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
    for (const list of this.free.values()) for (const b of list) b.destroy();
    this.free.clear();
    this.bytesPooled = 0;
  }
}
