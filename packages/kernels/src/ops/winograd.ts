/**
 * Backend glue for Winograd F(m x m, 3 x 3) convolutions (wgsl/winograd.ts):
 * the forward conv with its epilogue fused into the output transform, and
 * the input gradient as the same conv over dy with flipped, transposed
 * weights. Filter transforms are cached per weight buffer and version, so
 * inference transforms each weight once; a weight written in place (an
 * optimizer step) is re-transformed into the same buffer.
 */
import type { Conv2dParams, MatmulEpilogue, View } from '@kiln/core';
import type { OpContext } from '../backend.js';
import type { GPUStorage } from '../pool.js';
import type { Runtime } from '../runtime.js';
import { WINO_WG, WM, winogradKey, winogradPoints, winogradWgsl, type WinogradConfig } from '../wgsl/winograd.js';
import { Meta } from './elementwise.js';
import { gemm } from './matmul.js';

type GView = View<GPUStorage>;
type Epilogue = Omit<MatmulEpilogue<GPUStorage>, 'biasAxis' | 'alpha'>;

/** Winograd tile size: F(2x2, 3x3) or F(4x4, 3x3). */
export type WinogradTile = 2 | 4;

/** True for the convs Winograd F(m, 3x3) computes: 3x3, stride 1, dilation 1, one group, padding <= 2 (so the gradient's 2 - p >= 0). */
export function winogradApplies(w: readonly number[], p: Conv2dParams): boolean {
  const one = (a: readonly number[]) => a[0] === 1 && a[1] === 1;
  return w[2] === 3 && w[3] === 3 && p.groups === 1 && one(p.stride) && one(p.dilation)
    && p.padding[0] <= 2 && p.padding[1] <= 2;
}

interface CachedFilter {
  version: number;
  layout: string;
  u: GPUStorage;
}

/** Per runtime: weight buffer -> (tile, flip, view layout) -> transformed filter. */
const filterCaches = new WeakMap<Runtime, Map<GPUBuffer, Map<string, CachedFilter>>>();

/** Drops (and releases) the cached transforms of a weight buffer being released. */
export function forgetFilters(ctx: OpContext, buffer: GPUBuffer): void {
  const cache = filterCaches.get(ctx.rt);
  const entries = cache?.get(buffer);
  if (!entries) return;
  cache!.delete(buffer);
  for (const e of entries.values()) ctx.release(e.u);
}

/** Number of weight buffers with cached transforms (tests). */
export function cachedFilterCount(ctx: OpContext): number {
  return filterCaches.get(ctx.rt)?.size ?? 0;
}

/**
 * U[xi][r][k] for weights `w` ([R, K, 3, 3], or [K, R, 3, 3] read flipped):
 * from the cache when the weight buffer has not been written since.
 */
function transformedFilter(ctx: OpContext, w: GView, m: WinogradTile, flip: boolean): GPUStorage {
  const [R, K] = flip ? [w.shape[1], w.shape[0]] : [w.shape[0], w.shape[1]];
  const layout = `${m}:${flip ? 'f' : 'n'}:${w.dtype}:${w.offset}:${w.shape.join('x')}:${w.strides.join(',')}`;
  let cache = filterCaches.get(ctx.rt);
  if (!cache) filterCaches.set(ctx.rt, (cache = new Map()));
  let entries = cache.get(w.storage.buffer);
  if (!entries) cache.set(w.storage.buffer, (entries = new Map()));
  const version = ctx.rt.bufferVersion(w.storage.buffer);
  const hit = entries.get(layout);
  if (hit && hit.version === version) return hit.u;
  const u = hit?.u ?? ctx.alloc(winogradPoints(m) * R * K, 'float32');
  const config: WinogradConfig = { kind: 'filter', m, flip, half: w.dtype === 'float16' ? ['wt'] : undefined };
  const meta = new Meta(WM.words);
  meta.set(WM.K, [K]).set(WM.R, [R]).set(WM.w, [w.offset, ...w.strides]);
  ctx.rt.dispatch({
    kernel: 'winograd.filter', key: winogradKey(config), code: () => winogradWgsl(config),
    bindings: [{ buffer: u.buffer, write: true }, { buffer: w.storage.buffer }],
    meta: meta.u, workgroups: [Math.ceil(K / WINO_WG), R, 1],
  });
  // The filter kernel reads w without writing it: the version it saw is the current one.
  entries.set(layout, { version: ctx.rt.bufferVersion(w.storage.buffer), layout, u });
  return u;
}

/**
 * out = epilogue(conv(x, filter u, padding pad)) for a 3x3 stride-1 conv as
 * input transform, alpha^2 GEMMs and output transform. False (nothing
 * dispatched) when a scratch buffer would exceed the binding limit.
 */
function run(ctx: OpContext, x: GView, out: GView, u: GPUStorage, pad: [number, number], m: WinogradTile, e: Epilogue): boolean {
  const [N, K, H, W] = x.shape;
  const [, R, OH, OW] = out.shape;
  const a2 = winogradPoints(m);
  const TH = Math.ceil(OH / m);
  const TW = Math.ceil(OW / m);
  const P = N * TH * TW;
  const Pp = Math.ceil(P / 4) * 4;
  const limit = ctx.rt.device.limits.maxStorageBufferBindingSize;
  if (4 * a2 * Math.max(K, R) * Pp > limit || K > 65535 || R > 65535) return false;
  const meta = new Meta(WM.words);
  meta.set(WM.N, [N, K, H, W, R, OH, OW]).i32(WM.PH, pad[0]).i32(WM.PW, pad[1]);
  meta.set(WM.TH, [TH, TW, P, Pp]);
  meta.set(WM.x, [x.offset, ...x.strides]).set(WM.y, [out.offset, ...out.strides]);
  let epi = 0;
  if (e.bias) {
    meta.set(WM.bias, [e.bias.offset, e.bias.strides[0] ?? 0]);
    epi |= 1;
  }
  if (e.residual) {
    meta.set(WM.res, [e.residual.offset, ...e.residual.strides]);
    epi |= 2;
  }
  if (e.relu) epi |= 4;
  meta.u[WM.epi] = epi;
  const V = ctx.alloc(a2 * K * Pp, 'float32');
  const Mx = ctx.alloc(a2 * R * Pp, 'float32');
  const inCfg: WinogradConfig = { kind: 'input', m, half: x.dtype === 'float16' ? ['x'] : undefined };
  ctx.rt.dispatch({
    kernel: 'winograd.input', key: winogradKey(inCfg), code: () => winogradWgsl(inCfg),
    bindings: [{ buffer: V.buffer, write: true }, { buffer: x.storage.buffer }],
    meta: meta.u, workgroups: [Math.ceil(P / WINO_WG), K, 1],
  });
  const f32 = 'float32' as const;
  gemm(ctx, {
    a: { storage: u, dtype: f32, shape: [a2, R, K], strides: [R * K, K, 1], offset: 0 },
    b: { storage: V, dtype: f32, shape: [a2, K, P], strides: [K * Pp, Pp, 1], offset: 0 },
    out: { storage: Mx, dtype: f32, shape: [a2, R, P], strides: [R * Pp, Pp, 1], offset: 0 },
    bPadded: true,
  });
  // float16 out/bias/residual are read and written in place; U, V and Mx stay float32 (see wgsl/winograd.ts).
  const outHalf = ([['out', out], ['bias', e.bias], ['res', e.residual]] as const).filter(([, v]) => v?.dtype === 'float16').map(([n]) => n);
  const outCfg: WinogradConfig = { kind: 'output', m, half: outHalf.length ? outHalf : undefined };
  ctx.rt.dispatch({
    kernel: 'winograd.output', key: winogradKey(outCfg), code: () => winogradWgsl(outCfg),
    bindings: [
      { buffer: out.storage.buffer, write: true }, { buffer: Mx.buffer },
      { buffer: e.bias?.storage.buffer ?? ctx.rt.placeholder }, { buffer: e.residual?.storage.buffer ?? ctx.rt.placeholder },
    ],
    meta: meta.u, workgroups: [Math.ceil(P / WINO_WG), R, 1],
  });
  // Queue order makes immediate reuse safe (pool.ts).
  ctx.release(V);
  ctx.release(Mx);
  return true;
}

/** Forward conv by Winograd F(m x m, 3 x 3); false when it does not apply (the caller takes another route). */
export function winogradConv2d(ctx: OpContext, x: GView, w: GView, out: GView, p: Conv2dParams, m: WinogradTile, e: Epilogue): boolean {
  if (!winogradApplies(w.shape, p)) return false;
  return run(ctx, x, out, transformedFilter(ctx, w, m, false), p.padding, m, e);
}

/** dx = conv(dy, w flipped and transposed, padding 2 - p) by Winograd; false when it does not apply. */
export function winogradBackwardInput(ctx: OpContext, dy: GView, w: GView, dx: GView, p: Conv2dParams, m: WinogradTile): boolean {
  if (!winogradApplies(w.shape, p)) return false;
  return run(ctx, dy, dx, transformedFilter(ctx, w, m, true), [2 - p.padding[0], 2 - p.padding[1]], m, {});
}
