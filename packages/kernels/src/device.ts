/**
 * Acquires a WebGPU device: Dawn's `webgpu` package in Node (loaded by a
 * dynamic import, so browser bundles never see it), `navigator.gpu` in a
 * browser. Limits are raised to the adapter's maxima and the optional
 * features Kiln can use are enabled when present.
 */
import { BackendError } from '@kiln/core';

/** What the adapter is and can do; benchmarks print it. */
export interface AdapterInfo {
  /** GPUAdapterInfo.vendor ('' when the adapter does not say). */
  vendor: string;
  /** GPUAdapterInfo.architecture. */
  architecture: string;
  /** GPUAdapterInfo.device. */
  device: string;
  /** GPUAdapterInfo.description, e.g. the driver's adapter name. */
  description: string;
  /** 'node-dawn' or 'browser'. */
  runtime: 'node-dawn' | 'browser';
  /** The optional features enabled on the device, sorted. */
  features: string[];
  /** WGSL language extensions (GPU.wgslLanguageFeatures), e.g. packed_4x8_integer_dot_product. */
  wgslLanguageFeatures?: string[];
  /** The device's limits (raised to the adapter's maxima where Kiln needs them). */
  limits: Record<string, number>;
  /** Subgroup size range (GPUAdapterInfo.subgroupMinSize/MaxSize) where the adapter reports it. */
  subgroupMinSize?: number;
  /** Largest subgroup size, where reported. */
  subgroupMaxSize?: number;
}

/** Device options of initWebGPU(): which adapter, and Dawn's flags in Node. */
export interface DeviceOptions {
  /** GPURequestAdapterOptions.powerPreference. */
  powerPreference?: GPUPowerPreference;
  /** Extra dawn.node `create()` flags, e.g. `['backend=vulkan']` (Node only). */
  dawnFlags?: string[];
}

/** A device plus what Kiln recorded about its adapter. */
export interface AcquiredDevice {
  device: GPUDevice;
  info: AdapterInfo;
  /** Keeps dawn.node's GPU object alive as long as the device is used. */
  gpu: GPU;
}

const RAISED_LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupStorageSize',
  'maxStorageBuffersPerShaderStage',
  'maxUniformBufferBindingSize',
] as const;

const OPTIONAL_FEATURES: GPUFeatureName[] = ['shader-f16', 'timestamp-query', 'subgroups' as GPUFeatureName];

function isNode(): boolean {
  const p = (globalThis as { process?: { versions?: { node?: string } } }).process;
  return typeof p?.versions?.node === 'string';
}

// One dawn.node GPU (a Dawn instance) per set of flags for the whole process.
// A second instance created after a device of the first was destroyed can
// abort the process inside Dawn's Vulkan teardown (std::system_error,
// "Invalid argument"), so a re-init after device loss asks the same
// instance for a new adapter and device instead.
const nodeInstances = new Map<string, Promise<GPU>>();

function nodeGpu(flags: string[]): Promise<GPU> {
  const key = flags.join('\n');
  let gpu = nodeInstances.get(key);
  if (!gpu) {
    gpu = createNodeGpu(flags);
    nodeInstances.set(key, gpu);
    gpu.catch(() => nodeInstances.delete(key));
  }
  return gpu;
}

async function createNodeGpu(flags: string[]): Promise<GPU> {
  const env = (globalThis as unknown as { process: { env: Record<string, string | undefined> } }).process.env;
  if (!env.XDG_RUNTIME_DIR) {
    // Dawn warns when XDG_RUNTIME_DIR is unset; any writable directory silences it.
    const osModule = 'node:os';
    const os = (await import(/* @vite-ignore */ osModule)) as { tmpdir(): string };
    env.XDG_RUNTIME_DIR = os.tmpdir();
  }
  // The specifier is a variable so bundlers targeting the browser leave it alone.
  const specifier = 'webgpu';
  const mod = (await import(/* @vite-ignore */ specifier)) as { create(flags: string[]): GPU; globals: object };
  Object.assign(globalThis, mod.globals);
  return mod.create(flags);
}

/** Finds a GPU, requests an adapter and a device with raised limits; throws BackendError when there is none. */
export async function acquireDevice(options: DeviceOptions = {}): Promise<AcquiredDevice> {
  let gpu: GPU | undefined;
  let runtime: AdapterInfo['runtime'];
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu && !isNode()) {
    gpu = nav.gpu;
    runtime = 'browser';
  } else if (isNode()) {
    try {
      gpu = await nodeGpu(options.dawnFlags ?? []);
    } catch (e) {
      throw new BackendError('initWebGPU', `cannot load the 'webgpu' (Dawn) package: ${(e as Error).message}`);
    }
    runtime = 'node-dawn';
  } else {
    throw new BackendError('initWebGPU', 'WebGPU is not available (no navigator.gpu)');
  }
  const adapter = await gpu.requestAdapter({ powerPreference: options.powerPreference });
  if (!adapter) throw new BackendError('initWebGPU', 'requestAdapter() returned null: no WebGPU adapter on this machine');

  const requiredLimits: Record<string, number> = {};
  const adapterLimits = adapter.limits as unknown as Record<string, number>;
  for (const name of RAISED_LIMITS) {
    const v = adapterLimits[name];
    if (typeof v === 'number') requiredLimits[name] = v;
  }
  const requiredFeatures = OPTIONAL_FEATURES.filter((f) => adapter.features.has(f));
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures });

  const limits: Record<string, number> = {};
  const deviceLimits = device.limits as unknown as Record<string, number>;
  for (const key in deviceLimits) if (typeof deviceLimits[key] === 'number') limits[key] = deviceLimits[key];
  const ai = adapter.info ?? ({} as GPUAdapterInfo);
  const info: AdapterInfo = {
    vendor: ai.vendor ?? '',
    architecture: ai.architecture ?? '',
    device: ai.device ?? '',
    description: ai.description ?? '',
    runtime,
    features: [...device.features].map(String).sort(),
    wgslLanguageFeatures: [...((gpu as { wgslLanguageFeatures?: Iterable<string> }).wgslLanguageFeatures ?? [])].sort(),
    limits,
  };
  const sg = ai as { subgroupMinSize?: number; subgroupMaxSize?: number };
  if (typeof sg.subgroupMinSize === 'number') info.subgroupMinSize = sg.subgroupMinSize;
  if (typeof sg.subgroupMaxSize === 'number') info.subgroupMaxSize = sg.subgroupMaxSize;
  return { device, info, gpu };
}
