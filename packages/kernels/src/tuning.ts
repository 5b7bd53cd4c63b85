/**
 * The tuning table: which GEMM/conv strategy an adapter gets, decided from
 * its info, never from one machine's luck.
 *
 * CPU-emulated WebGPU (lavapipe/llvmpipe, SwiftShader, WARP) runs a
 * workgroup as a loop over SIMD lanes and pays heavily for every barrier:
 * register blocking with no shared memory wins there (measured on lavapipe:
 * 16x16 shared tiles ran 2-3x slower than even a naive kernel). Real GPUs
 * want shared-memory tiles that cut global memory traffic.
 */
import type { AdapterInfo } from './device.js';

/** 'register': barrier-free register blocking. 'tiled': shared-memory tiles. */
export type GemmStrategy = 'register' | 'tiled';

const CPU_ADAPTERS = /llvmpipe|lavapipe|swiftshader|warp|software|cpu/i;

/** True when the adapter is a CPU implementation of WebGPU. */
export function isCpuAdapter(info: AdapterInfo): boolean {
  return CPU_ADAPTERS.test(`${info.vendor} ${info.architecture} ${info.device} ${info.description}`);
}

/** The GEMM strategy for `info`'s adapter. */
export function chooseGemmStrategy(info: AdapterInfo): GemmStrategy {
  return isCpuAdapter(info) ? 'register' : 'tiled';
}
