/**
 * The WebGPU runtime under the backend: one command encoder collecting
 * compute passes, submitted on read/sync or every `batchSize` dispatches;
 * a pipeline cache keyed by kernel name + config; one uniform arena per
 * batch holding every dispatch's meta (shapes, strides, scalars), so new
 * shapes never recompile; error scopes per batch; readback.
 */
import { BackendError } from '@kiln/core';
import { BufferPool } from './pool.js';
import { cooperativeWait } from './polling.js';
import { Profiler } from './profiler.js';

/** One storage binding of a dispatch, bound at @binding(1 + position). */
export interface Binding {
  buffer: GPUBuffer;
  /** True when the kernel writes it (declared `read_write`). */
  write?: boolean;
}

/** Everything needed to run one kernel once. */
export interface DispatchSpec {
  /** Kernel family/name, used for labels and profiling, e.g. 'gemm'. */
  kernel: string;
  /** Unique per distinct WGSL source: name + config. */
  key: string;
  /** Builds the WGSL (only called on a cache miss). */
  code: () => string;
  bindings: Binding[];
  /** 32-bit meta words bound as `var<uniform>` at @binding(0). */
  meta: ArrayLike<number>;
  workgroups: [number, number, number];
}

/** Tunables of the runtime. */
export interface RuntimeOptions {
  /** Submit after this many dispatches (default 64). */
  batchSize?: number;
  /** Dawn event polling interval while waiting, in ms; 0 = Dawn's busy setImmediate loop (default 1). */
  pollIntervalMs?: number;
  /**
   * Most bytes of GPU memory tensor storage may hold, live plus pooled
   * (default: no cap). An allocation past it first frees the pool, then
   * fails with a BackendError naming the op, the size and the cap.
   */
  memoryCap?: number;
}

/** KILN_WEBGPU_POLL_MS from the environment (Node only), if set. */
function envPollMs(): number | undefined {
  const v = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.KILN_WEBGPU_POLL_MS;
  return v === undefined || v === '' || Number.isNaN(Number(v)) ? undefined : Number(v);
}

/** The uniform arena (bytes); one meta block per dispatch, aligned. */
const ARENA_BYTES = 64 * 1024;
/** Uniform binding sizes are rounded to this. */
const META_ALIGN = 16;
/** How long a failed readback waits for Dawn to report a device loss behind it. */
const LOSS_REPORT_MS = 200;

export class Runtime {
  readonly storagePool: BufferPool;
  readonly stagingPool: BufferPool;
  readonly profiler: Profiler;
  batchSize: number;
  pollIntervalMs: number;

  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private readonly layouts = new Map<string, GPUBindGroupLayout>();
  private readonly arena: GPUBuffer;
  private readonly arenaHost = new ArrayBuffer(ARENA_BYTES);
  private readonly arenaWords = new Uint32Array(this.arenaHost);
  private arenaUsed = 0;
  private placeholderBuffer: GPUBuffer | null = null;
  private readonly metaAlign: number;
  private dispatched = 0;
  /** GPUBuffers read or written by encoded, unsubmitted work. */
  private readonly touched = new Set<GPUBuffer>();
  /** Write counts per buffer (write bindings, uploads, copies); caches of derived data key on them. */
  private readonly versions = new WeakMap<GPUBuffer, number>();
  /** Error-scope results of submitted batches not yet awaited by a read/sync. */
  private scopeChecks: Promise<GPUError | null>[] = [];
  /** Kernel names dispatched in the batch being encoded, for naming its errors. */
  private batchKernels = new Set<string>();
  private error: Error | null = null;
  private lostInfo: string | null = null;
  private readonly lost: Promise<never>;

  constructor(readonly device: GPUDevice, options: RuntimeOptions = {}) {
    this.batchSize = options.batchSize ?? 64;
    this.pollIntervalMs = options.pollIntervalMs ?? envPollMs() ?? 1;
    const U = GPUBufferUsage;
    // Every storage is bound whole, so the binding limit caps a buffer as well as maxBufferSize.
    const binding = device.limits.maxStorageBufferBindingSize;
    const [maxBytes, maxLimit] = binding <= device.limits.maxBufferSize
      ? [binding, 'maxStorageBufferBindingSize'] : [device.limits.maxBufferSize, 'maxBufferSize'];
    this.storagePool = new BufferPool(device, U.STORAGE | U.COPY_SRC | U.COPY_DST, 'kiln-storage', maxBytes, maxLimit);
    this.storagePool.memoryCap = options.memoryCap ?? Infinity;
    this.storagePool.beforeTrim = () => this.flush();
    this.stagingPool = new BufferPool(device, U.MAP_READ | U.COPY_DST, 'kiln-staging');
    this.metaAlign = Math.max(META_ALIGN, device.limits.minUniformBufferOffsetAlignment);
    this.arena = device.createBuffer({ size: ARENA_BYTES, usage: U.UNIFORM | U.COPY_DST, label: 'kiln-meta-arena' });
    this.profiler = new Profiler(device);
    this.profiler.wait = (start) => this.wait(start);
    device.addEventListener('uncapturederror', (ev) => {
      const e = (ev as GPUUncapturedErrorEvent).error;
      this.error ??= new BackendError('webgpu', `uncaptured ${e.constructor.name}: ${e.message}`);
    });
    this.lost = device.lost.then((info) => {
      this.lostInfo = `reason '${info.reason ?? 'unknown'}': ${info.message}`;
      throw this.lostError('webgpu');
    });
    this.lost.catch(() => undefined);
    this.openScopes();
  }

  /** Null while the device works; after loss (device.destroy(), a driver reset) what the device said. */
  get lostReason(): string | null {
    return this.lostInfo;
  }

  /** The error every use of a lost device throws, naming the op that met it. */
  lostError(op: string): BackendError {
    return new BackendError(op, `the WebGPU device was lost (${this.lostInfo}); its tensors are gone. Call initWebGPU() for a new device and recreate them`);
  }

  /** Throws the first pending device error (once) or device loss (always). */
  check(op = 'webgpu'): void {
    if (this.lostInfo !== null) throw this.lostError(op);
    if (this.error) {
      const e = this.error;
      this.error = null;
      throw e;
    }
  }

  private openScopes(): void {
    this.device.pushErrorScope('out-of-memory');
    this.device.pushErrorScope('validation');
  }

  private closeScopes(): void {
    const validation = this.device.popErrorScope();
    const oom = this.device.popErrorScope();
    const kernels = [...this.batchKernels];
    this.batchKernels = new Set();
    const check = Promise.all([validation, oom]).then(([v, o]) => {
      const e = v ?? o;
      if (e) {
        // The batch's kernels name the suspects; Dawn's message names the exact object by its label (the kernel key).
        const op = kernels.length === 1 ? kernels[0]! : 'webgpu';
        this.error ??= new BackendError(op, `${e.constructor.name} in a batch of kernels [${kernels.join(', ')}]: ${e.message}`);
      }
      return e;
    }, () => null);
    this.scopeChecks.push(check);
    this.openScopes();
  }

  private layout(bindings: Binding[]): GPUBindGroupLayout {
    const key = bindings.map((b) => (b.write ? 'w' : 'r')).join('');
    let layout = this.layouts.get(key);
    if (!layout) {
      const entries: GPUBindGroupLayoutEntry[] = [
        { binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'uniform' } },
        ...bindings.map((b, i) => ({
          binding: i + 1,
          visibility: GPUShaderStage.COMPUTE,
          buffer: { type: (b.write ? 'storage' : 'read-only-storage') as GPUBufferBindingType },
        })),
      ];
      layout = this.device.createBindGroupLayout({ entries, label: `kiln-layout-${key}` });
      this.layouts.set(key, layout);
    }
    return layout;
  }

  private pipeline(spec: DispatchSpec, layout: GPUBindGroupLayout): GPUComputePipeline {
    const access = spec.bindings.map((b) => (b.write ? 'w' : 'r')).join('');
    const key = `${spec.key}|${access}`;
    let p = this.pipelines.get(key);
    if (!p) {
      // A scope of its own, so a kernel that fails to compile or validate is
      // named exactly (and dropped from the cache) at the next op.
      this.device.pushErrorScope('validation');
      const module = this.device.createShaderModule({ code: spec.code(), label: spec.key });
      p = this.device.createComputePipeline({
        layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
        compute: { module, entryPoint: 'main' },
        label: spec.key,
      });
      this.pipelines.set(key, p);
      const scope = this.device.popErrorScope().then((e) => {
        if (e) {
          this.pipelines.delete(key);
          this.error ??= new BackendError(spec.kernel, `WGSL kernel '${spec.key}' failed validation: ${e.message}`);
        }
        return e;
      }, () => null);
      this.scopeChecks.push(scope);
    }
    return p;
  }

  /**
   * A small storage buffer bound where a kernel declares an optional input
   * it is told (by a meta flag) not to read, so one pipeline serves both.
   */
  get placeholder(): GPUBuffer {
    return (this.placeholderBuffer ??= this.device.createBuffer({
      size: 16, usage: GPUBufferUsage.STORAGE, label: 'kiln-placeholder',
    }));
  }

  /** Number of distinct pipelines compiled so far. */
  get pipelineCount(): number {
    return this.pipelines.size;
  }

  private getEncoder(): GPUCommandEncoder {
    return (this.encoder ??= this.device.createCommandEncoder({ label: 'kiln-batch' }));
  }

  private endPass(): void {
    this.pass?.end();
    this.pass = null;
  }

  /** Encodes one dispatch into the current batch. Empty grids encode nothing. */
  dispatch(spec: DispatchSpec): void {
    this.check(spec.kernel);
    const [x, y, z] = spec.workgroups;
    if (x === 0 || y === 0 || z === 0) return;
    this.unaliasBindings(spec);
    for (const b of spec.bindings) if (b.write) this.bump(b.buffer);
    const metaBytes = Math.max(META_ALIGN, Math.ceil((spec.meta.length * 4) / META_ALIGN) * META_ALIGN);
    if (this.arenaUsed + metaBytes > ARENA_BYTES || this.dispatched >= this.batchSize || this.profiler.full) this.flush();
    const metaOffset = this.arenaUsed;
    this.arenaWords.set(spec.meta, metaOffset / 4);
    this.arenaUsed = Math.ceil((metaOffset + metaBytes) / this.metaAlign) * this.metaAlign;

    const layout = this.layout(spec.bindings);
    const pipeline = this.pipeline(spec, layout);
    const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: this.arena, offset: metaOffset, size: metaBytes } }];
    spec.bindings.forEach((b, i) => {
      entries.push({ binding: i + 1, resource: { buffer: b.buffer } });
      this.touched.add(b.buffer);
    });
    const bindGroup = this.device.createBindGroup({ layout, entries });
    const encoder = this.getEncoder();
    const timestampWrites = this.profiler.beginDispatch(spec.kernel);
    if (timestampWrites) {
      this.endPass();
      const pass = encoder.beginComputePass({ label: spec.kernel, timestampWrites });
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bindGroup);
      pass.dispatchWorkgroups(x, y, z);
      pass.end();
    } else {
      this.pass ??= encoder.beginComputePass({ label: 'kiln-pass' });
      this.pass.setPipeline(pipeline);
      this.pass.setBindGroup(0, bindGroup);
      this.pass.dispatchWorkgroups(x, y, z);
    }
    this.dispatched++;
    this.batchKernels.add(spec.kernel);
    if (this.profiler.wallClock) this.flush();
  }

  /**
   * WebGPU rejects a buffer bound both writable and read-only in one
   * dispatch; such a read binding gets a snapshot copy (taken in queue
   * order, so it sees the same data) from a temporary pooled buffer.
   */
  private unaliasBindings(spec: DispatchSpec): void {
    const written = new Set(spec.bindings.filter((b) => b.write).map((b) => b.buffer));
    for (const b of spec.bindings) {
      if (b.write || !written.has(b.buffer)) continue;
      const original = b.buffer;
      const temp = this.storagePool.acquire(original.size);
      this.copyBuffer(original, 0, temp, 0, original.size);
      for (const other of spec.bindings) if (!other.write && other.buffer === original) other.buffer = temp;
      this.storagePool.recycle(temp);
    }
  }

  /** How many times `buffer` has been written so far (by a dispatch, an upload or a copy): a cache of data derived from it is valid while this is unchanged. */
  bufferVersion(buffer: GPUBuffer): number {
    return this.versions.get(buffer) ?? 0;
  }

  private bump(buffer: GPUBuffer): void {
    this.versions.set(buffer, (this.versions.get(buffer) ?? 0) + 1);
  }

  /** Encodes a buffer-to-buffer copy (bytes) into the current batch. */
  copyBuffer(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    if (bytes === 0) return;
    this.bump(dst);
    this.endPass();
    this.getEncoder().copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
    this.touched.add(src);
    this.touched.add(dst);
  }

  /** Encodes a zero-fill of `bytes` bytes of `buffer` from `offset` (both multiples of 4) into the current batch: a memset, not a dispatch. */
  clearBuffer(buffer: GPUBuffer, offset: number, bytes: number): void {
    if (bytes === 0) return;
    this.bump(buffer);
    this.endPass();
    this.getEncoder().clearBuffer(buffer, offset, bytes);
    this.touched.add(buffer);
  }

  /** Submits everything encoded so far. */
  flush(): void {
    if (!this.encoder) return;
    this.endPass();
    if (this.arenaUsed > 0) this.device.queue.writeBuffer(this.arena, 0, this.arenaHost, 0, this.arenaUsed);
    this.profiler.resolve(this.encoder);
    this.device.queue.submit([this.encoder.finish()]);
    this.closeScopes();
    this.profiler.submitted(this.device.queue);
    this.encoder = null;
    this.arenaUsed = 0;
    this.dispatched = 0;
    this.touched.clear();
  }

  /**
   * Uploads host words into `buffer`. `queue.writeBuffer` runs before any
   * encoded-but-unsubmitted pass, so when pending work touches this buffer
   * (it may be a pooled buffer that earlier work still reads) we submit
   * that work first.
   */
  write(buffer: GPUBuffer, data: ArrayBufferView, bytes: number): void {
    this.check('write');
    if (this.touched.has(buffer)) this.flush();
    this.bump(buffer);
    if (bytes > 0) this.device.queue.writeBuffer(buffer, 0, data.buffer, data.byteOffset, bytes);
  }

  /** Waits for `start()`, failing fast (not hanging) if the device is lost. */
  private wait<T>(start: () => Promise<T>): Promise<T> {
    return cooperativeWait(this.pollIntervalMs, () => Promise.race([start(), this.lost]));
  }

  private async settleErrors(): Promise<void> {
    const checks = this.scopeChecks;
    this.scopeChecks = [];
    await this.wait(() => Promise.all(checks));
    this.check();
  }

  /** Flushes and resolves once the device has finished all submitted work. */
  async sync(): Promise<void> {
    this.check('sync');
    this.flush();
    await this.wait(() => this.device.queue.onSubmittedWorkDone());
    await this.settleErrors();
  }

  /** Copies `bytes` from `buffer` at `offset` back to the host. */
  async read(buffer: GPUBuffer, offset: number, bytes: number): Promise<ArrayBuffer> {
    this.check('read');
    if (bytes === 0) return new ArrayBuffer(0);
    const staging = this.stagingPool.acquire(bytes);
    this.copyBuffer(buffer, offset, staging, 0, bytes);
    this.flush();
    try {
      await this.wait(() => staging.mapAsync(GPUMapMode.READ, 0, bytes));
    } catch (e) {
      // Dawn may reject the map before it reports the loss that caused it.
      if (this.lostInfo === null) await Promise.race([this.lost.catch(() => undefined), new Promise((r) => setTimeout(r, LOSS_REPORT_MS))]);
      this.check('read');
      throw e instanceof BackendError ? e : new BackendError('read', `mapAsync failed: ${(e as Error).message}`);
    }
    const out = staging.getMappedRange(0, bytes).slice(0);
    staging.unmap();
    this.stagingPool.recycle(staging);
    await this.settleErrors();
    return out;
  }

  /** Releases every GPU object; the runtime is unusable after. */
  destroy(): void {
    this.encoder = null;
    this.pass = null;
    this.storagePool.destroy();
    this.stagingPool.destroy();
    this.arena.destroy();
    this.placeholderBuffer?.destroy();
    this.device.destroy();
  }
}
