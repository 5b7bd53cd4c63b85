/**
 * @kiln/kernels — Kiln's WebGPU backend: device acquisition (Dawn in Node,
 * navigator.gpu in browsers), buffer pool, batched command encoding,
 * pipeline cache, GPU timestamp profiling and the WGSL kernels.
 *
 * @packageDocumentation
 */
import { registerBackend } from '@kiln/core';
import { WebGPUBackend, type WebGPUBackendOptions } from './backend.js';
import { acquireDevice, type AdapterInfo, type DeviceOptions } from './device.js';

export { WebGPUBackend } from './backend.js';
export type { WebGPUBackendOptions } from './backend.js';
export { GPUStorage } from './pool.js';
export { cooperativeWait } from './polling.js';
export type { AdapterInfo, DeviceOptions } from './device.js';
export type { KernelTime } from './profiler.js';
export type { AdapterMatch, GemmStrategy, KernelStrategy, KernelTuning, StrategyClass, TuningEntry } from './tuning.js';
export { TUNING_TABLE, chooseTuning } from './tuning.js';
export { autotuneState, disableAutotune, enableAutotune, queueShape, tunePending } from './autotune.js';
export type { AutotuneOptions, AutotuneState, ConvRoute, ConvShape, TunedConv } from './autotune.js';
export { int8GemmOverride } from './ops/matmul-int8.js';
export type { Int8Gemm } from './wgsl/gemm-int8.js';

/** Options of {@link initWebGPU}: device selection plus backend tunables. */
export interface InitWebGPUOptions extends DeviceOptions, WebGPUBackendOptions {}

let pending: Promise<WebGPUBackend> | null = null;
let current: WebGPUBackend | null = null;

/**
 * Acquires a WebGPU device, constructs the backend and registers it with
 * core under the name 'webgpu'. Idempotent: later calls return the same
 * backend (options of later calls are ignored) until it is destroyed or
 * its device is lost; then the next call acquires a new device and
 * registers a new backend. Throws a BackendError when no adapter is available.
 */
export function initWebGPU(options: InitWebGPUOptions = {}): Promise<WebGPUBackend> {
  if (current && !current.isDestroyed && !current.isLost) return Promise.resolve(current);
  // A lost device's backend frees what it still holds; its tensors keep throwing "device was lost".
  if (current?.isLost) current.destroy();
  pending ??= acquireDevice(options)
    .then(({ device, info, gpu }) => {
      const backend = new WebGPUBackend(device, info, options);
      backend.keepAlive = gpu;
      current = backend;
      registerBackend(backend);
      return backend;
    })
    .finally(() => {
      pending = null;
    });
  return pending;
}

/** The adapter info of the initialised backend (vendor, architecture, features, limits), or null before initWebGPU. */
export function getAdapterInfo(): AdapterInfo | null {
  return current && !current.isDestroyed && !current.isLost ? current.info : null;
}
