import type { Backend, BackendStorage } from './backend.js';
import { itemSize } from './dtype.js';

/**
 * Reference-counted backend memory shared by a tensor and all its views.
 * The version counter is bumped by every in-place write so autograd can
 * detect that a tensor it saved has been modified since.
 */
export class StorageRef {
  refs = 1;
  /** In-place writes so far (PyTorch's _version). */
  version = 0;
  /** Unique per storage in this process: what Tensor.dataPtr() reports. */
  readonly id = nextId();
  readonly bytes: number;

  constructor(
    readonly backend: Backend,
    readonly data: BackendStorage,
  ) {
    this.bytes = data.size * itemSize(data.dtype);
    const live = (liveBytes.get(backend.name) ?? 0) + this.bytes;
    liveBytes.set(backend.name, live);
    if (live > (peakLiveBytes.get(backend.name) ?? 0)) peakLiveBytes.set(backend.name, live);
  }

  /** Records an in-place write. */
  bumpVersion(): void {
    this.version++;
  }

  /** Adds a holder. */
  retain(): this {
    this.refs++;
    return this;
  }

  /** Drops a holder; the last one returns the memory to the backend. */
  release(): void {
    if (this.refs <= 0) return;
    this.refs--;
    if (this.refs === 0) {
      liveBytes.set(this.backend.name, (liveBytes.get(this.backend.name) ?? 0) - this.bytes);
      this.backend.release(this.data);
    }
  }
}

/** Bytes held by live storages, per backend name. */
export const liveBytes = new Map<string, number>();

/** High-water mark of liveBytes per backend since the last resetPeakMemoryStats(). */
export const peakLiveBytes = new Map<string, number>();

let idCounter = 0;

function nextId(): number {
  return ++idCounter;
}
