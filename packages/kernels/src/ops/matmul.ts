/** Backend glue for matmul(): picks the GEMM config for the views and packs meta. */
import type { MatmulEpilogue, View } from '@kiln/core';
import type { OpContext } from '../backend.js';
import type { GPUStorage } from '../pool.js';
import { EPI, GM, TILE, gemmKey, gemmWgsl, type GemmConfig, type GemmOperand } from '../wgsl/gemm.js';
import { Meta } from './elementwise.js';
import { gemmBlock, type RegisterBlock } from '../tuning.js';

type GView = View<GPUStorage>;

/** Strides with size-1 dims zeroed, so they never block a fast path. */
const effStrides = (v: { shape: readonly number[]; strides: readonly number[] }) =>
  v.strides.map((s, d) => (v.shape[d] === 1 ? 0 : s));

/** A GEMM over explicit [B, M, K] x [B, K, N] -> [B, M, N] views (any of them may be stride tricks). */
export interface GemmOperands {
  a: GView;
  b: GView;
  out: GView;
  bias?: GView;
  biasAxis?: 'n' | 'm';
  residual?: GView;
  relu?: boolean;
  alpha?: number;
  /** True when b's rows may be read up to N rounded up to 4 (a padded scratch buffer). */
  bPadded?: boolean;
}

/** How a and b can be loaded: vec4 along a unit-stride, 16-byte-aligned axis, else scalar. */
function loadModes(a: GView, b: GView, vecN: boolean, bPadded: boolean): Pick<GemmConfig, 'a' | 'b'> {
  const [, K, N] = b.shape;
  const sa = effStrides(a);
  const sb = effStrides(b);
  const al = (x: number) => x % 4 === 0;
  const k4 = K % 4 === 0 && K >= 4;
  const aK4 = k4 && (sa[2] === 1 || K === 1) && al(a.offset) && al(sa[0]) && al(sa[1]);
  const bN4 = vecN && (N % 4 === 0 || bPadded) && N >= 1 && sb[2] === 1 && al(b.offset) && al(sb[0]) && al(sb[1]);
  const bK4 = k4 && sb[1] === 1 && al(b.offset) && al(sb[0]) && al(sb[2]);
  return { a: aK4 ? 'k4' : 's', b: bN4 ? 'n4' : bK4 ? 'k4' : 's' };
}

/** Test/benchmark hook: fields set here override the tuning table's register block. */
export const gemmOverride: Partial<RegisterBlock> & { vecB?: boolean } = {};

/** The operands the GEMM reads or writes as float16 words (any mix: a float16 im2col panel, a float32 bias). */
function halfOperands(g: GemmOperands): GemmOperand[] {
  const named: [GemmOperand, GView | undefined][] = [['out', g.out], ['A', g.a], ['Bm', g.b], ['bias', g.bias], ['res', g.residual]];
  return named.filter(([, v]) => v?.dtype === 'float16').map(([n]) => n);
}

/** Encodes one (batched) GEMM with its epilogue; float16 operands are read and written in place (see wgsl/gemm.ts). */
export function gemm(ctx: OpContext, g: GemmOperands): void {
  const { a, b, out } = g;
  const [B, M, K] = a.shape;
  const N = b.shape[2];
  if (B === 0 || M === 0 || N === 0) return;
  const strategy = ctx.gemm;
  const block = { ...gemmBlock(ctx.tuning), ...gemmOverride };
  const { tm, tn, wg, grid } = block;
  const config: GemmConfig = strategy === 'register'
    ? { strategy, tm, tn, wg, cols: block.cols, grid, shareA: block.shareA, ...loadModes(a, b, gemmOverride.vecB !== false && tn % 4 === 0, !!g.bPadded) }
    : { strategy, tm: 4, tn: 4, wg: [16, 16], a: 's', b: 's', cols: 'block', grid: 'nm', shareA: 0 };
  const half = halfOperands(g);
  if (half.length) config.half = half;
  const meta = new Meta(GM.words);
  meta.set(GM.M, [M, N, K, B]);
  meta.set(GM.a, [a.offset, ...effStrides(a)]);
  meta.set(GM.b, [b.offset, ...effStrides(b)]);
  meta.set(GM.out, [out.offset, ...effStrides(out)]);
  let epi = 0;
  if (g.bias) {
    meta.set(GM.bias, [g.bias.offset, g.bias.shape[0] === 1 ? 0 : g.bias.strides[0]]);
    epi |= g.biasAxis === 'm' ? EPI.biasM : EPI.biasN;
  }
  if (g.residual) {
    meta.set(GM.res, [g.residual.offset, ...effStrides(g.residual)]);
    epi |= EPI.residual;
  }
  if (g.relu) epi |= EPI.relu;
  meta.u[GM.epi] = epi;
  meta.f32(GM.alpha, g.alpha ?? 1);
  meta.u[GM.bn] = Math.ceil(N / 4) * 4;
  const bindings = [
    { buffer: out.storage.buffer, write: true }, { buffer: a.storage.buffer }, { buffer: b.storage.buffer },
    { buffer: g.bias?.storage.buffer ?? ctx.rt.placeholder }, { buffer: g.residual?.storage.buffer ?? ctx.rt.placeholder },
  ];
  const workgroups: [number, number, number] = strategy === 'register'
    ? (grid === 'mn' ? [Math.ceil(M / tm / wg[1]), Math.ceil(N / tn / wg[0]), B] : [Math.ceil(N / tn / wg[0]), Math.ceil(M / tm / wg[1]), B])
    : [Math.ceil(N / TILE), Math.ceil(M / TILE), B];
  ctx.rt.dispatch({ kernel: 'matmul', key: gemmKey(config), code: () => gemmWgsl(config), bindings, meta: meta.u, workgroups });
}

export function matmul(ctx: OpContext, a: GView, b: GView, out: GView, e: MatmulEpilogue<GPUStorage> = {}): void {
  gemm(ctx, { a, b, out, bias: e.bias, biasAxis: e.biasAxis, residual: e.residual, relu: e.relu, alpha: e.alpha });
}
