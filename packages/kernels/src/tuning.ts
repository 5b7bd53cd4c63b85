/**
 * The tuning table: which GEMM/conv strategy and block shapes an adapter
 * gets, decided from its facts (vendor, architecture, description, subgroup
 * sizes, limits), never from one machine's luck.
 *
 * Two strategy classes:
 * - 'cpu-like': CPU-emulated WebGPU (lavapipe/llvmpipe, SwiftShader, WARP)
 *   runs a workgroup as a loop over SIMD lanes and pays heavily for every
 *   barrier: register blocking with no shared memory wins there (measured on
 *   lavapipe: 16x16 shared tiles ran 2-3x slower than even a naive kernel).
 *   On llvmpipe a load whose address differs per lane costs a scalar load
 *   per lane (several instructions each), while an FMA covers all lanes in
 *   one instruction; so the register kernels load the operand that is the
 *   same for every lane (GEMM A rows, conv weights) once per subgroup and
 *   hand it out with subgroupBroadcast, when the adapter has subgroups of
 *   one known size. Measured on lavapipe (2 cores, AVX2, subgroup size 8),
 *   GEMM 1024^3: 4.1 -> 13 GFLOP/s of CPU time.
 * - 'gpu': real GPUs want shared-memory tiles that cut global memory
 *   traffic: the tiled GEMM, the direct conv (no im2col buffer) and the
 *   per-element conv backward kernels.
 *
 * `KILN_KERNEL_STRATEGY=gpu|cpu-like|auto` (or the backend option
 * `strategy`) forces a class on any adapter, so CI runs the GPU path on
 * lavapipe: the parity families run once under each class (vitest.config.ts).
 *
 * How a new adapter gets an entry: add a row to {@link TUNING_TABLE} above
 * the generic rows, matched on the facts `AdapterInfo` reports (regular
 * expressions over vendor / architecture / description, a minimum of a
 * limit, a subgroup size range), with the class and the fields that differ
 * from the class's defaults. The first row whose class is the wanted one and
 * whose match holds wins. Then run the parity families on that adapter
 * under `KILN_KERNEL_STRATEGY=auto` and the GEMM/conv benchmark suites to
 * show the row pays (`kiln tune` prints the per-shape winners it would cache;
 * see autotune.ts), and cite the measurement in the row's comment.
 */
import { BackendError } from '@kiln/core';
import type { AdapterInfo } from './device.js';

/** 'register': barrier-free register blocking. 'tiled': shared-memory tiles. */
export type GemmStrategy = 'register' | 'tiled';

/** The kernel strategy class: what a CPU-emulated adapter gets, or what a real GPU gets. */
export type StrategyClass = 'cpu-like' | 'gpu';

/** The strategy a backend is asked for: a class, or 'auto' (the class the adapter's facts pick). */
export type KernelStrategy = StrategyClass | 'auto';

/** Per-adapter kernel choices (the resolved row of the table). */
export interface KernelTuning {
  /** The strategy class these choices belong to. */
  strategy: StrategyClass;
  /** Name of the tuning table row that produced them. */
  entry: string;
  /** GEMM kernel family. */
  gemm: GemmStrategy;
  /** The subgroup size when the adapter has subgroups of one fixed size and the row uses them, else 0 (no subgroup kernels). */
  subgroupSize: number;
  /** Whether ungrouped conv forward runs as im2col + GEMM (else the direct implicit-GEMM kernel). */
  im2col: boolean;
  /** Largest Winograd tile for 3x3 stride-1 convs (0: never); the internal `winogradTile` picks per shape. */
  winograd: 0 | 2 | 4;
  /** Fewest output tiles (GEMM columns) per transformed-domain GEMM for Winograd to be used. */
  winogradMinTiles: number;
}

/** What a table row requires of an adapter; every given field must hold. */
export interface AdapterMatch {
  /** Tested against `${vendor} ${architecture} ${device} ${description}`. */
  text?: RegExp;
  /** Minimum values of device limits, e.g. `{ maxComputeWorkgroupStorageSize: 8192 }`. */
  minLimits?: Record<string, number>;
  /** Features the adapter must have. */
  features?: string[];
}

/** One row of the tuning table. */
export interface TuningEntry {
  /** Shown in benchmark output and `backend.tuning.entry`. */
  name: string;
  /** The class the row serves. */
  strategy: StrategyClass;
  /** The adapter facts the row requires. */
  match: AdapterMatch;
  /** Whether the row's kernels use subgroups (when the adapter has one fixed size). */
  subgroups: boolean;
  /** GEMM kernel family. */
  gemm: GemmStrategy;
  /** Ungrouped conv forward as im2col + GEMM (only taken with the register GEMM and subgroups). */
  im2col: boolean;
  /** Largest Winograd tile for 3x3 stride-1 convs (0: never). */
  winograd: 0 | 2 | 4;
  /** Fewest output tiles per transformed-domain GEMM for Winograd to pay (see the internal `winogradTile`). */
  winogradMinTiles: number;
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

/**
 * The rows, most specific first. The tiled GEMM stages two 64 x 16 f32 tiles
 * (8 KiB) with 256 threads per workgroup, so GPU rows that use it require
 * those limits; an adapter below them (WebGPU's defaults are 16 KiB and 256,
 * so only a non-conforming one) falls to the register row of its class.
 */
export const TUNING_TABLE: readonly TuningEntry[] = [
  // lavapipe / SwiftShader / WARP: measured on lavapipe (see the top comment, ops/conv.ts and winogradTile).
  { name: 'cpu-emulated', strategy: 'cpu-like', match: { text: CPU_ADAPTERS }, subgroups: true, gemm: 'register', im2col: true, winograd: 4, winogradMinTiles: 16 },
  // Any other adapter forced to the CPU-like class: the same kernels.
  { name: 'cpu-like', strategy: 'cpu-like', match: {}, subgroups: true, gemm: 'register', im2col: true, winograd: 4, winogradMinTiles: 16 },
  {
    name: 'gpu', strategy: 'gpu',
    match: { minLimits: { maxComputeWorkgroupStorageSize: 8192, maxComputeInvocationsPerWorkgroup: 256 } },
    subgroups: false, gemm: 'tiled', im2col: false, winograd: 4, winogradMinTiles: 64,
  },
  // A GPU without the tiled kernel's limits: register GEMM, direct conv; Winograd needs a whole
  // plain register block of columns (16 threads x 8).
  { name: 'gpu-small-limits', strategy: 'gpu', match: {}, subgroups: false, gemm: 'register', im2col: false, winograd: 4, winogradMinTiles: 128 },
];

/** True when the adapter is a CPU implementation of WebGPU. */
export function isCpuAdapter(info: AdapterInfo): boolean {
  return CPU_ADAPTERS.test(adapterText(info));
}

function adapterText(info: AdapterInfo): string {
  return `${info.vendor} ${info.architecture} ${info.device} ${info.description}`;
}

/** Whether `info`'s adapter satisfies `m`. */
export function matchesAdapter(m: AdapterMatch, info: AdapterInfo): boolean {
  if (m.text && !m.text.test(adapterText(info))) return false;
  for (const [name, min] of Object.entries(m.minLimits ?? {})) if (!((info.limits[name] ?? 0) >= min)) return false;
  return (m.features ?? []).every((f) => info.features.includes(f));
}

/** The class 'auto' picks for an adapter: 'cpu-like' on CPU-emulated adapters, else 'gpu'. */
export function autoStrategy(info: AdapterInfo): StrategyClass {
  return isCpuAdapter(info) ? 'cpu-like' : 'gpu';
}

/** The GEMM strategy the table gives `info`'s adapter under 'auto'. */
export function chooseGemmStrategy(info: AdapterInfo): GemmStrategy {
  return chooseTuning(info).gemm;
}

/** Subgroup size usable by the register kernels: fixed (min == max), a power of two from 4 to 64, else 0. */
export function fixedSubgroupSize(info: AdapterInfo): number {
  const lo = info.subgroupMinSize ?? 0;
  const hi = info.subgroupMaxSize ?? 0;
  const ok = info.features.includes('subgroups') && lo === hi && lo >= 4 && lo <= 64 && (lo & (lo - 1)) === 0;
  return ok ? lo : 0;
}

/** The kernel choices for `info`'s adapter under `strategy` (the first matching row of that class). */
export function chooseTuning(info: AdapterInfo, strategy: KernelStrategy = 'auto'): KernelTuning {
  const cls = strategy === 'auto' ? autoStrategy(info) : strategy;
  const row = TUNING_TABLE.find((r) => r.strategy === cls && matchesAdapter(r.match, info));
  // The last row of each class matches every adapter.
  const e = row ?? TUNING_TABLE.filter((r) => r.strategy === cls).at(-1)!;
  const subgroupSize = e.subgroups ? fixedSubgroupSize(info) : 0;
  // im2col's GEMM route pays only with the subgroup-broadcast GEMM (see ops/conv.ts).
  return {
    strategy: cls, entry: e.name, gemm: e.gemm, subgroupSize,
    im2col: e.im2col && e.gemm === 'register' && subgroupSize > 0, winograd: e.winograd, winogradMinTiles: e.winogradMinTiles,
  };
}

const STRATEGIES: readonly KernelStrategy[] = ['gpu', 'cpu-like', 'auto'];

/** Parses a strategy name (`KILN_KERNEL_STRATEGY`); undefined or '' means 'auto'; null for anything else. */
export function parseStrategy(s: string | undefined): KernelStrategy | null {
  if (s === undefined || s === '') return 'auto';
  return (STRATEGIES as readonly string[]).includes(s) ? (s as KernelStrategy) : null;
}

/**
 * The strategy asked for: `option` when given, else `KILN_KERNEL_STRATEGY`
 * (read through globalThis.process, so pages without it get 'auto').
 * Throws a BackendError naming the accepted values for anything else.
 */
export function requestedStrategy(option?: KernelStrategy): KernelStrategy {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  const raw = option ?? env?.KILN_KERNEL_STRATEGY;
  const s = parseStrategy(raw);
  if (!s) throw new BackendError('initWebGPU', `kernel strategy must be one of ${STRATEGIES.join(', ')}; got '${raw}'${option ? '' : ' (KILN_KERNEL_STRATEGY)'}`);
  return s;
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

/**
 * Whether an ungrouped conv forward with output `out` runs as im2col + GEMM:
 * on the CPU-like rows with subgroups (see ops/conv.ts), when one image's
 * output pixels (the per-image GEMM's columns) fill a register block's
 * columns (4S). Below that the subgroup direct kernel, whose columns run
 * over every image's pixels, wins: on lavapipe (the 32x32 demo at batch 32,
 * GPU timestamps, load 3-7, three runs) layer4.0.conv1 (1 pixel per image)
 * im2col 207-350 ms vs direct 14-19, layer3.0.conv1 (4 pixels) 44-82 vs 10,
 * layer2.0.conv1 (16 pixels) 14-33 vs 11.
 */
export function convIm2col(t: KernelTuning, out: readonly number[]): boolean {
  const block = gemmBlock(t);
  return t.im2col && out[2]! * out[3]! >= block.tn * block.wg[0];
}

/**
 * Whether the table computes an ungrouped conv's weight gradient (dy of
 * shape `dy`) as im2col + one GEMM (ops/conv-weight.ts) rather than the dW
 * kernel: on the CPU-like rows with subgroups, for outputs of at most 4
 * pixels per image, where the kernel's loop over each image's few output
 * pixels is mostly overhead. Measured on lavapipe (the 32x32 demo's shapes,
 * batch 32, GPU timestamps, min of 5 interleaved rounds, load 8), GEMM vs
 * kernel ms: layer3.0.conv1 (2x2 out) 13.4 vs 21.4, layer3 convs (2x2)
 * 29.0 vs 43.1, layer4.0.conv1 (1x1) 18.0 vs 43.4; at 16 pixels it split
 * (layer2 convs 30.6 vs 39.6, layer2.0.conv1 15.8 vs 11.7), at 64 and 256
 * the kernel won (layer1 34.3 vs 45.6, the stem 15.3 vs 25.0). The GPU rows
 * keep the kernel (no GPU measured; the autotuner's 'im2col' can pick it).
 */
export function convWeightGemm(t: KernelTuning, dy: readonly number[]): boolean {
  return t.im2col && dy[2]! * dy[3]! <= 4;
}

/**
 * Largest input-channel count (forward; output channels for the input
 * gradient: the GEMM's K) at which F(4x4, 3x3) may run. Measured against
 * PyTorch on ResNet18's shapes, K = 64..512 (packages/kernels/test/
 * winograd-error.test.ts): against the conv parity tolerance of each case
 * (1e-6 * sqrt(K) relative and absolute, tests/parity/cnn-table.ts) F(4x4)'s
 * worst error is 0.25 of it, F(2x2)'s 0.06, the direct route's 0.065 (against
 * a flat 1e-4: 0.076, and 0.21 with Lavin's points; see wgsl/winograd.ts).
 * Beyond the measured K, F(2x2) only.
 */
export const WINOGRAD_F4_MAX_K = 512;

/**
 * The Winograd tile for one conv (0: another route), `out` being what the
 * transforms produce (the conv output forward, dx for the input gradient).
 * F(4x4) where its error is measured within tolerance and it leaves at
 * least `winogradMinTiles` tiles per GEMM, else F(2x2) with that many, else
 * 0. Measured on lavapipe (2 cores, batch 1 at 224x224, ms forward / dx):
 * layer1 im2col 18.4/15.3, F2 10.2/8.7, F4 7.1/8.2; layer3 (14x14, 16 F4
 * tiles) 23.0/23.1, 9.2/9.5, 5.8/10.6; layer4 (7x7: 4 F4 tiles, 16 F2)
 * 15.9/18.1, 16.1/14.2, 33.6/37.0: a subgroup-GEMM workgroup covers 32
 * columns, so fewer than 16 tiles idle most lanes. The GPU rows' 64 is the
 * tiled GEMM's tile width (no GPU measured yet).
 *
 * On small maps a tile is mostly padding: F(m) is used only where its
 * transformed-domain products, (m+2)^2 per tile, are fewer than the 9 per
 * output pixel that the other routes (im2col + GEMM, the direct kernels)
 * compute ({@link winogradSaves}): no F(4x4) on 2x2 maps (36 for 36, plus
 * a 36-point filter transform per weight update), no Winograd on 1x1 maps
 * (16 for 9; ops/conv-tap.ts takes those). On the 32x32 demo's layer3 (2x2
 * maps, batch 32, lavapipe, GPU timestamps, load 8, one run) F(2x2) took
 * 10.3 ms forward / 15.9 ms dx, F(4x4) 20.6 / 18.7, the direct kernel
 * 39.1 / 27.7. ResNet18 at 224x224 keeps its tiles (7x7 maps: F(2x2)).
 */
export function winogradTile(
  t: KernelTuning, x: readonly number[], w: readonly number[], out: readonly number[],
  p: { stride: readonly number[]; dilation: readonly number[]; groups: number }, dir: 'forward' | 'backwardInput',
): 0 | 2 | 4 {
  void x;
  const one = (a: readonly number[]) => a[0] === 1 && a[1] === 1;
  if (!t.winograd || w[2] !== 3 || w[3] !== 3 || p.groups !== 1 || !one(p.stride) || !one(p.dilation)) return 0;
  const K = dir === 'forward' ? w[1]! : w[0]!;
  const tiles = (m: number) => out[0]! * Math.ceil(out[2]! / m) * Math.ceil(out[3]! / m);
  const pays = (m: 2 | 4) => tiles(m) >= t.winogradMinTiles && winogradSaves(m, [out[2]!, out[3]!]);
  if (t.winograd === 4 && K <= WINOGRAD_F4_MAX_K && pays(4)) return 4;
  return pays(2) ? 2 : 0;
}

/** Whether F(m x m, 3x3) computes fewer products than 9 per pixel of the `out` map ([OH, OW]): tiles x (m+2)^2 < 9 OH OW. */
export function winogradSaves(m: 2 | 4, out: readonly number[]): boolean {
  return Math.ceil(out[0]! / m) * Math.ceil(out[1]! / m) * (m + 2) ** 2 < 9 * out[0]! * out[1]!;
}

/**
 * Whether the fixed table sends a conv forward to the vec4 direct kernel
 * (wgsl/conv-direct.ts; ops/conv-direct.ts checks the input's alignment)
 * when no earlier route took it. ops/conv.ts tries Winograd, then im2col,
 * so on the CPU-like rows this is the forward of convs im2col declines:
 * ResNet18's 7x7 stem (K = 147 is no multiple of 4). Measured on lavapipe
 * (2 cores, load 9, GPU timestamps, best of interleaved rounds): stem N=1
 * vec4 7.7-18.4 ms vs the scalar direct kernel 9.6-28.8 (the scalar one won
 * one of six comparisons), N=8 97-128 vs 145 ms. On the same runs im2col
 * beat it on every stride-2 3x3 and 1x1 shape of ResNet18 (e.g.
 * layer3.0.conv1 N=1: im2col 7.1, vec4 7.2, scalar 10.9 ms), which is why
 * it is not tried first. Not on the GPU rows: no GPU has measured it (the
 * autotuner's 'direct4' candidate can still pick it there). Only for output
 * rows of two vec4 tiles or more (OW >= 8): on the 32x32 demo's small
 * stride-2 convs (OW 4 and 2, batch 32, lavapipe, load 3-7) the scalar
 * kernel took 10.6 and 10.4 ms, the vec4 one 19.2 and 34.8.
 */
export function convDirectVec4(t: KernelTuning, out: readonly number[]): boolean {
  return t.strategy === 'cpu-like' && t.subgroupSize > 0 && out[3]! >= 8;
}
