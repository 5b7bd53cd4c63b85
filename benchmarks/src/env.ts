/**
 * The run's environment: Kiln's WebGPU backend, TF.js on the same Dawn
 * instance, and the versions every JSON line carries.
 */
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import type { WebGPUBackend } from '@kiln/kernels';

const require = createRequire(import.meta.url);

/** Dawn warns without XDG_RUNTIME_DIR; any writable directory silences it. */
export function ensureRuntimeDir(): void {
  process.env.XDG_RUNTIME_DIR ??= os.tmpdir();
}

/** A package's version from its package.json, or 'unknown'. */
export function packageVersion(name: string): string {
  try {
    const main = require.resolve(name);
    let dir = main;
    for (let i = 0; i < 6; i++) {
      dir = dir.slice(0, dir.lastIndexOf('/'));
      try {
        const pkg = JSON.parse(readFileSync(`${dir}/package.json`, 'utf8')) as { name?: string; version?: string };
        if (pkg.name === name && pkg.version) return pkg.version;
      } catch {
        // not this directory
      }
    }
  } catch {
    // not installed
  }
  return 'unknown';
}

/** Kiln's WebGPU backend, or the reason it is unavailable. */
export async function initKiln(opts: { tune: boolean; strategy: 'gpu' | 'cpu-like' | 'auto'; tuneCache: string }): Promise<{ backend: WebGPUBackend | null; error: string | null }> {
  try {
    const { enableAutotune, initWebGPU } = await import('@kiln/kernels');
    const backend = await initWebGPU({ strategy: opts.strategy });
    // The autotuner is on in the benchmarks (off in tests): measureCase tunes each case's new conv shapes before timing.
    if (opts.tune) await enableAutotune(backend, { cache: process.env.KILN_TUNE_CACHE ?? opts.tuneCache });
    return { backend, error: null };
  } catch (e) {
    return { backend: null, error: (e as Error).message };
  }
}

/** The adapter fields every line carries (the limits stay out: they would dwarf the line). */
export function adapterSummary(backend: WebGPUBackend | null): Record<string, unknown> | null {
  if (!backend) return null;
  const { vendor, architecture, device, description, runtime, features } = backend.info;
  const t = backend.tuning;
  return { vendor, architecture, device, description, runtime, features, gemm: backend.gemm, strategy: t.strategy, tuningEntry: t.entry, subgroupSize: t.subgroupSize };
}

/** The GPU object (Dawn's) TF.js should use: Kiln's when it has one, else a fresh Dawn instance. */
export async function dawnGpu(kiln: WebGPUBackend | null): Promise<GPU> {
  if (kiln?.keepAlive) return kiln.keepAlive as GPU;
  // `webgpu` is @kiln/kernels' dependency; resolve it from there.
  const fromKernels = createRequire(require.resolve('@kiln/kernels'));
  const mod = (await import(fromKernels.resolve('webgpu'))) as { create(flags: string[]): GPU; globals: object };
  Object.assign(globalThis, mod.globals);
  return mod.create([]);
}

export function baseVersions(): Record<string, string> {
  return {
    node: process.versions.node,
    kiln: packageVersion('@kiln/core'),
    dawn: packageVersion('webgpu') !== 'unknown' ? packageVersion('webgpu') : kernelsDep('webgpu'),
    os: `${os.type()} ${os.release()}`,
    cpus: `${os.cpus().length}x ${os.cpus()[0]?.model ?? 'unknown'}`,
    cpuFlags: cpuFlags(),
  };
}

/** The SIMD flags that move lavapipe's speed (and every same-run ratio): AVX2, FMA, AVX-512 F/BW/VL/VNNI. */
export function cpuFlags(): string {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('flags')) ?? '';
    const flags = new Set(line.split(':')[1]?.trim().split(/\s+/) ?? []);
    return ['avx2', 'fma', 'avx512f', 'avx512bw', 'avx512vl', 'avx512_vnni'].filter((f) => flags.has(f)).join(' ') || 'none of avx2/fma/avx512';
  } catch {
    return 'unknown';
  }
}

function kernelsDep(name: string): string {
  try {
    const fromKernels = createRequire(require.resolve('@kiln/kernels'));
    const path = fromKernels.resolve(`${name}/package.json`);
    return (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}
