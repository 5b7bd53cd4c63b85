/**
 * The tuning table: which GEMM/conv strategy and block shapes an adapter
 * gets, decided from its info and limits, never from one machine's luck.
 *
 * CPU-emulated WebGPU (lavapipe/llvmpipe, SwiftShader, WARP) runs a
 * workgroup as a loop over SIMD lanes and pays heavily for every barrier:
 * register blocking with no shared memory wins there (measured on lavapipe:
 * 16x16 shared tiles ran 2-3x slower than even a naive kernel). Real GPUs
 * want shared-memory tiles that cut global memory traffic.
 *
 * On llvmpipe a load whose address differs per lane costs a scalar load
 * per lane (several instructions each), while an FMA covers all lanes in
 * one instruction; so the register kernels load the operand that is the
 * same for every lane (GEMM A rows, conv weights) once per subgroup and
 * hand it out with subgroupBroadcast, when the adapter has subgroups of one
 * known size. Measured on lavapipe (2 cores, AVX2, subgroup size 8), GEMM
 * 1024^3: 4.1 -> 13 GFLOP/s of CPU time.
 */
import type { AdapterInfo } from './device.js';

/** 'register': barrier-free register blocking. 'tiled': shared-memory tiles. */
export type GemmStrategy = 'register' | 'tiled';

/** Per-adapter kernel choices. */
export interface KernelTuning {
  gemm: GemmStrategy;
  /** The subgroup size when the adapter has subgroups of one fixed size, else 0 (no subgroup kernels). */
  subgroupSize: number;
}

/** A register-strategy block shape (see wgsl/gemm.ts). */
export interface RegisterBlock {
  tm: number;
  tn: number;
  wg: [number, number];
  cols: 'block' | 'interleave';
  grid: 'nm' | 'mn';
  shareA: number;
}

const CPU_ADAPTERS = /llvmpipe|lavapipe|swiftshader|warp|software|cpu/i;

/** True when the adapter is a CPU implementation of WebGPU. */
export function isCpuAdapter(info: AdapterInfo): boolean {
  return CPU_ADAPTERS.test(`${info.vendor} ${info.architecture} ${info.device} ${info.description}`);
}

/** The GEMM strategy for `info`'s adapter. */
export function chooseGemmStrategy(info: AdapterInfo): GemmStrategy {
  return isCpuAdapter(info) ? 'register' : 'tiled';
}

/** Subgroup size usable by the register kernels: fixed (min == max), a power of two from 4 to 64, else 0. */
export function fixedSubgroupSize(info: AdapterInfo): number {
  const lo = info.subgroupMinSize ?? 0;
  const hi = info.subgroupMaxSize ?? 0;
  const ok = info.features.includes('subgroups') && lo === hi && lo >= 4 && lo <= 64 && (lo & (lo - 1)) === 0;
  return ok ? lo : 0;
}

export function chooseTuning(info: AdapterInfo): KernelTuning {
  const gemm = chooseGemmStrategy(info);
  // Subgroup sharing only pays where per-lane loads are the cost (CPU adapters).
  return { gemm, subgroupSize: gemm === 'register' ? fixedSubgroupSize(info) : 0 };
}

/** Plain register block: 4 x 8 per thread, 16 x 4 threads (adapters without fixed-size subgroups). */
const PLAIN: RegisterBlock = { tm: 4, tn: 8, wg: [16, 4], cols: 'block', grid: 'nm', shareA: 0 };

/**
 * The register block. With subgroups: one subgroup per workgroup computing
 * 2S rows x 4S columns, workgroup_id.x walking row blocks so consecutive
 * workgroups (run by different threads at the same time) read the same B
 * panel from cache. Measured on lavapipe at 1024^3 (CPU-time GFLOP/s):
 * 4x8 16x4-threads 4-5, this 12-14, 8x4 9, 8x8 8-10, 24x4 11-12, 32x8 12-14,
 * column-major grid 8.7. Used for every M, even M < 2S (the fc layer): the
 * idle rows cost little there and one block means one pipeline per load
 * mode, not two (cold compiles take seconds on lavapipe).
 */
export function gemmBlock(t: KernelTuning): RegisterBlock {
  const S = t.subgroupSize;
  return S ? { tm: 2 * S, tn: 4, wg: [S, 1], cols: 'block', grid: 'mn', shareA: S } : PLAIN;
}

/** A conv-forward block shape (see wgsl/conv.ts). */
export interface ConvBlock {
  tm: number;
  tn: number;
  wg: [number, number];
  shareW: number;
}

/**
 * Conv block for a conv whose shared operand has `rows` rows (output
 * channels forward and for dW, input channels for dX) in `groups` groups.
 * With subgroups and one group: 2S rows (S for at most S rows: conv1's
 * 3-channel input grad) x 4 columns per lane, one subgroup per workgroup; measured on lavapipe this
 * beats 24/32 rows, 8 columns and 2-subgroup workgroups. Otherwise (forward
 * only; the backward kernels then run one thread per element) TM rows (the
 * largest of 4, 2, 1 dividing the per-group count, so a thread never
 * straddles groups) x 4 pixels, 16 x 4 threads.
 */
export function convBlock(t: KernelTuning, rows: number, groups: number): ConvBlock {
  const S = t.subgroupSize;
  if (S && groups === 1) return { tm: rows > S ? 2 * S : S, tn: 4, wg: [S, 1], shareW: S };
  const og = rows / groups;
  return { tm: og % 4 === 0 ? 4 : og % 2 === 0 ? 2 : 1, tn: 4, wg: [16, 4], shareW: 0 };
}

/** Whether ungrouped conv forward runs as im2col + GEMM (CPU adapters with subgroups; see ops/conv.ts). */
export function convIm2col(t: KernelTuning): boolean {
  return t.gemm === 'register' && t.subgroupSize > 0;
}
