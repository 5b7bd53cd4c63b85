/**
 * Per-kernel GPU timing. With 'timestamp-query' every dispatch gets its own
 * compute pass whose begin/end timestamps land in a query set, resolved at
 * each batch flush and read back asynchronously. Without it, the runtime
 * submits after every dispatch and the profiler times each submission from
 * its submit (or the previous completion, if later) to its completion.
 */

/** Time spent in one kernel over a profiled region. */
export interface KernelTime {
  /** The kernel family's label, e.g. 'gemm', 'unary.exp'. */
  kernel: string;
  /** Total milliseconds over all of its dispatches. */
  ms: number;
  /** Number of dispatches. */
  count: number;
}

const QUERY_CAPACITY = 2048;

type Waiter = <T>(start: () => Promise<T>) => Promise<T>;

export class Profiler {
  private active = false;
  private readonly timestamps: boolean;
  private querySet: GPUQuerySet | null = null;
  private labels: string[] = [];
  private batchLabels: string[] = [];
  private pending: Promise<void>[] = [];
  private totals = new Map<string, KernelTime>();
  private lastDone = 0;
  wait: Waiter = (start) => start();

  constructor(private readonly device: GPUDevice) {
    this.timestamps = device.features.has('timestamp-query');
  }

  /** True when results come from GPU timestamps rather than wall clock. */
  get usesTimestamps(): boolean {
    return this.timestamps;
  }

  /** True while profiling without timestamps: the runtime flushes after every dispatch. */
  get wallClock(): boolean {
    return this.active && !this.timestamps;
  }

  /** True when the query set cannot take another dispatch before a flush. */
  get full(): boolean {
    return this.active && this.timestamps && this.labels.length * 2 >= QUERY_CAPACITY;
  }

  start(): void {
    this.active = true;
    this.totals = new Map();
    this.lastDone = 0;
    if (this.timestamps) this.querySet ??= this.device.createQuerySet({ type: 'timestamp', count: QUERY_CAPACITY });
  }

  /** Waits for outstanding timings and returns them, slowest kernel first. */
  async stop(): Promise<KernelTime[]> {
    const pending = this.pending;
    this.pending = [];
    await Promise.all(pending);
    this.active = false;
    return [...this.totals.values()].sort((a, b) => b.ms - a.ms);
  }

  private add(kernel: string, ms: number): void {
    const t = this.totals.get(kernel);
    if (t) {
      t.ms += ms;
      t.count++;
    } else this.totals.set(kernel, { kernel, ms, count: 1 });
  }

  /** Timestamp writes for the next dispatch's pass, or undefined when not timing with queries. */
  beginDispatch(kernel: string): GPUComputePassTimestampWrites | undefined {
    if (!this.active) return undefined;
    if (!this.timestamps || !this.querySet) {
      this.batchLabels.push(kernel);
      return undefined;
    }
    const i = this.labels.length;
    this.labels.push(kernel);
    return { querySet: this.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 };
  }

  /** Called before a batch is finished: resolves its queries into a readable buffer. */
  resolve(encoder: GPUCommandEncoder): void {
    if (!this.querySet || this.labels.length === 0) return;
    const count = this.labels.length * 2;
    const labels = this.labels;
    this.labels = [];
    const resolveBuf = this.device.createBuffer({ size: count * 8, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    const readBuf = this.device.createBuffer({ size: count * 8, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    encoder.resolveQuerySet(this.querySet, 0, count, resolveBuf, 0);
    encoder.copyBufferToBuffer(resolveBuf, 0, readBuf, 0, count * 8);
    // Mapping must wait until the batch that copies into readBuf is submitted
    // (a buffer pending a map cannot be used in a submit): see submitted().
    this.toMap.push({ readBuf, resolveBuf, labels });
  }

  private toMap: { readBuf: GPUBuffer; resolveBuf: GPUBuffer; labels: string[] }[] = [];

  private mapResolved(): void {
    for (const { readBuf, resolveBuf, labels } of this.toMap.splice(0)) {
      this.pending.push(
        this.wait(() => readBuf.mapAsync(GPUMapMode.READ)).then(() => {
          const t = new BigInt64Array(readBuf.getMappedRange());
          labels.forEach((kernel, i) => this.add(kernel, Math.max(0, Number(t[2 * i + 1] - t[2 * i])) / 1e6));
          readBuf.unmap();
          readBuf.destroy();
          resolveBuf.destroy();
        }),
      );
    }
  }

  /** Called after a batch is submitted; in wall-clock mode times it. */
  submitted(queue: GPUQueue): void {
    this.mapResolved();
    if (!this.active || this.timestamps || this.batchLabels.length === 0) return;
    const labels = this.batchLabels;
    this.batchLabels = [];
    const submittedAt = performance.now();
    this.pending.push(
      this.wait(() => queue.onSubmittedWorkDone()).then(() => {
        const done = performance.now();
        const ms = done - Math.max(submittedAt, this.lastDone);
        this.lastDone = done;
        for (const k of labels) this.add(k, ms / labels.length);
      }),
    );
  }
}
