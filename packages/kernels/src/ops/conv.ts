/**
 * Backend glue for conv2d and its two backward primitives. float16 views
 * are read and written in place by every route (the generators' `half`
 * flags; the 1x1 and im2col routes through the GEMM's, im2col with a
 * float16 panel; Winograd's transforms), except the float32-only vec4
 * direct kernel, which float16 operands skip.
 */
import type { Conv2dParams, MatmulEpilogue, View } from '@kiln/core';
import type { OpContext } from '../backend.js';
import type { GPUStorage } from '../pool.js';
import { grid1d } from '../wgsl/common.js';
import { CM, CONV_EPI, convKey, convWgsl, type ConvConfig } from '../wgsl/conv.js';
import { convBlock, convDirectVec4, convIm2col, convWeightGemm, winogradTile, type ConvBlock } from '../tuning.js';
import { numel } from '../views.js';
import { Meta } from './elementwise.js';
import { gemm } from './matmul.js';
import { winogradBackwardInput, winogradConv2d, type WinogradTile } from './winograd.js';
import { forcedRoute, routeOverride, tunedRoute } from '../autotune.js';
import { convDirect4 } from './conv-direct.js';
import { convWeightViaGemm } from './conv-weight.js';
import { conv2dBackwardInputSingleTap, conv2dBackwardWeightSingleTap, conv2dSingleTap } from './conv-tap.js';

type GView = View<GPUStorage>;
type Epilogue = Omit<MatmulEpilogue<GPUStorage>, 'biasAxis' | 'alpha'>;

/** The WGSL names of the operands that are float16 views (see ConvConfig.half). */
function halfNames(views: Record<string, GView | undefined>): string[] | undefined {
  const names = Object.entries(views).filter(([, v]) => v?.dtype === 'float16').map(([n]) => n);
  return names.length ? names : undefined;
}

/** The conv meta (CM layout) of x, w and y (the output, or dy). */
export function geometry(x: GView, w: GView, y: GView, p: Conv2dParams): Meta {
  const [N, C, H, W] = x.shape;
  const [O, CG, KH, KW] = w.shape;
  const [, , OH, OW] = y.shape;
  const meta = new Meta(CM.words);
  meta.set(CM.N, [N, C, H, W, O, OH, OW, KH, KW, p.stride[0], p.stride[1]]);
  meta.i32(CM.PH, p.padding[0]).i32(CM.PW, p.padding[1]);
  meta.set(CM.DH, [p.dilation[0], p.dilation[1], p.groups, CG, O / p.groups]);
  meta.set(CM.x, [x.offset, ...x.strides]);
  meta.set(CM.w, [w.offset, ...w.strides]);
  meta.set(CM.y, [y.offset, ...y.strides]);
  return meta;
}

/** [N, C, H, W] as [N, C, H*W] when H and W merge (always true for contiguous views). */
export function flatSpatial(v: GView): GView | null {
  const [n, c, h, w] = v.shape;
  const [sn, sc, sh, sw] = v.strides;
  if (h !== 1 && w !== 1 && sh !== w * sw) return null;
  return { ...v, shape: [n, c, h * w], strides: [sn, sc, w === 1 ? sh : sw] };
}

/** A 1x1, stride-1, unpadded, ungrouped conv is a batched GEMM: out[n] = w @ x[n]. */
function conv1x1AsGemm(ctx: OpContext, x: GView, w: GView, out: GView, p: Conv2dParams, e: Epilogue): boolean {
  const [O, C, KH, KW] = w.shape;
  const unit = (a: [number, number], v: number) => a[0] === v && a[1] === v;
  if (KH !== 1 || KW !== 1 || p.groups !== 1 || !unit(p.stride, 1) || !unit(p.padding, 0)) return false;
  const xb = flatSpatial(x);
  const ob = flatSpatial(out);
  const rb = e.residual ? flatSpatial(e.residual) : undefined;
  if (!xb || !ob || rb === null) return false;
  const a: GView = { ...w, shape: [x.shape[0], O, C], strides: [0, w.strides[0], w.strides[1]] };
  gemm(ctx, { a, b: xb, out: ob, bias: e.bias, biasAxis: 'm', residual: rb, relu: e.relu });
  return true;
}

/** Test/benchmark hook: fields set here override the tuning table's forward block. */
export const convOverride: Partial<ConvBlock> & { im2col?: boolean; winograd?: WinogradTile | 0; vec4?: boolean; weightGemm?: boolean; dxImages?: number } = {};

/**
 * An ungrouped conv as im2col into a pooled scratch buffer plus one batched
 * GEMM out[n] = w[O, C*KH*KW] @ col[n]: the GEMM kernel loads both operands
 * as vec4 and each input value once per 2S output channels, which beats
 * the direct kernel's scalar pixel loads on CPU adapters (see tuning.ts).
 */
function convViaIm2col(ctx: OpContext, x: GView, w: GView, out: GView, p: Conv2dParams, e: Epilogue): boolean {
  const [O, CG, KH, KW] = w.shape;
  const [N, , OH, OW] = out.shape;
  const K = CG * KH * KW;
  const wFlat = w.strides[3] === 1 && w.strides[2] === KW && w.strides[1] === KH * KW;
  const ob = flatSpatial(out);
  const rb = e.residual ? flatSpatial(e.residual) : undefined;
  // K % 4: the GEMM then reads w rows as vec4 (conv1's K = 147 measured faster direct).
  // im2col's f32 quotients are exact below 2^22; its grid has K rows in y.
  if (p.groups !== 1 || K % 4 !== 0 || !wFlat || !ob || rb === null) return false;
  if (OH * OW + 4 >= 2 ** 22 || K > 65535 || N > 65535) return false;
  const rowP = Math.ceil((OH * OW) / 4) * 4;
  // A float16 input gets a float16 panel: half the bytes written and read back by the GEMM.
  const colType = x.dtype === 'float16' ? 'float16' : 'float32';
  const col = ctx.alloc(N * K * rowP, colType);
  const config: ConvConfig = { kind: 'im2col', tm: 1, tn: 1, wg: [1, 1], shareW: 0, half: halfNames({ x, col: colType === 'float16' ? x : undefined }) };
  const meta = geometry(x, w, out, p);
  ctx.rt.dispatch({
    kernel: 'im2col', key: convKey(config), code: () => convWgsl(config),
    bindings: [{ buffer: col.buffer, write: true }, { buffer: x.storage.buffer }],
    meta: meta.u, workgroups: [Math.ceil(rowP / 4 / 64), K, N],
  });
  const a: GView = { ...w, shape: [N, O, K], strides: [0, w.strides[0], 1] };
  const b: GView = { storage: col, dtype: colType, shape: [N, K, OH * OW], strides: [K * rowP, rowP, 1], offset: 0 };
  gemm(ctx, { a, b, out: ob, bias: e.bias, biasAxis: 'm', residual: rb, relu: e.relu, bPadded: true });
  ctx.release(col);
  return true;
}

/**
 * The route fields in force: a test override, else the candidate the
 * autotuner is timing, else the tuned winner for this shape (autotune.ts).
 */
function routeFor(ctx: OpContext, dir: 'forward' | 'backwardInput' | 'backwardWeight', x: GView, w: GView, p: Conv2dParams): { im2col?: boolean; winograd?: WinogradTile | 0; vec4?: boolean } {
  if (convOverride.winograd !== undefined || convOverride.im2col !== undefined || convOverride.vec4 !== undefined) return convOverride;
  return forcedRoute() ?? routeOverride(tunedRoute(ctx.rt, { dir, x: x.shape as number[], w: w.shape as number[], p }));
}

export function conv2d(ctx: OpContext, x: GView, w: GView, out: GView, p: Conv2dParams, e: Epilogue = {}): void {
  if (numel(out.shape) === 0) return;
  if (conv1x1AsGemm(ctx, x, w, out, p, e)) return;
  const route = routeFor(ctx, 'forward', x, w, p);
  // One-pixel outputs with one tap in the image (ops/conv-tap.ts), unless a test or the tuner forces Winograd.
  if (!route.winograd && conv2dSingleTap(ctx, x, w, out, p, e)) return;
  const wino = route.winograd ?? winogradTile(ctx.tuning, x.shape, w.shape, out.shape, p, 'forward');
  if (wino && winogradConv2d(ctx, x, w, out, p, wino, e)) return;
  if ((route.im2col ?? convIm2col(ctx.tuning, out.shape)) && convViaIm2col(ctx, x, w, out, p, e)) return;
  const block = { ...convBlock(ctx.tuning, w.shape[0], p.groups), ...convOverride };
  const config: ConvConfig = { kind: 'forward', ...block, half: halfNames({ out, x, w, bias: e.bias, res: e.residual }) };
  const meta = geometry(x, w, out, p);
  let epi = 0;
  if (e.bias) {
    meta.set(CM.bias, [e.bias.offset, e.bias.strides[0] ?? 0]);
    epi |= CONV_EPI.bias;
  }
  if (e.residual) {
    meta.set(CM.res, [e.residual.offset, ...e.residual.strides]);
    epi |= CONV_EPI.residual;
  }
  if (e.relu) epi |= CONV_EPI.relu;
  meta.u[CM.epi] = epi;
  const bindings = [
    { buffer: out.storage.buffer, write: true }, { buffer: x.storage.buffer }, { buffer: w.storage.buffer },
    { buffer: e.bias?.storage.buffer ?? ctx.rt.placeholder }, { buffer: e.residual?.storage.buffer ?? ctx.rt.placeholder },
  ];
  // The vec4 direct kernel (ops/conv-direct.ts) where the tuner or the table picks it and the input's rows allow it.
  const epiViews = [e.bias, e.residual].filter((v): v is GView => v !== undefined);
  if (!config.half && (route.vec4 ?? convDirectVec4(ctx.tuning, out.shape)) && convDirect4(ctx, x, w, out, p, meta, bindings, epiViews)) return;
  const pixels = out.shape[0] * out.shape[2] * out.shape[3];
  const pixelGroups = Math.ceil(pixels / block.tn / block.wg[0]);
  const channelGroups = Math.ceil(out.shape[1] / block.tm / block.wg[1]);
  ctx.rt.dispatch({
    kernel: 'conv2d',
    key: convKey(config),
    code: () => convWgsl(config),
    bindings,
    meta: meta.u,
    workgroups: block.shareW ? [channelGroups, pixelGroups, 1] : [pixelGroups, channelGroups, 1],
  });
}

/** Backward block: the forward one with subgroups and one group, else the per-element kernels. */
function backwardConfig(ctx: OpContext, kind: ConvConfig['kind'], rows: number, p: Conv2dParams): ConvConfig {
  const block = { ...convBlock(ctx.tuning, rows, p.groups), ...convOverride };
  if (block.shareW) return { kind, ...block };
  return { kind, tm: 1, tn: 1, wg: [1, 1], shareW: 0 };
}

export function conv2dBackwardInput(ctx: OpContext, dy: GView, w: GView, dx: GView, p: Conv2dParams): void {
  const total = numel(dx.shape);
  if (total === 0) return;
  const route = routeFor(ctx, 'backwardInput', dx, w, p);
  if (!route.winograd && conv2dBackwardInputSingleTap(ctx, dy, w, dx, p)) return;
  const wino = route.winograd ?? winogradTile(ctx.tuning, dy.shape, w.shape, dx.shape, p, 'backwardInput');
  if (wino && winogradBackwardInput(ctx, dy, w, dx, p, wino)) return;
  const config = { ...backwardConfig(ctx, 'backwardInput', dx.shape[1], p), half: halfNames({ dx, dy, w }) };
  const meta = geometry(dx, w, dy, p);
  meta.u[CM.total] = total;
  // Shared kernel grid: (channel blocks, pixel blocks of one residue class in NB images, image chunks x classes); see wgsl/conv.ts.
  const [sh, sw] = p.stride;
  const perClass = Math.ceil(dx.shape[2] / sh) * Math.ceil(dx.shape[3] / sw);
  const lanes = config.tn * config.wg[0];
  const images = Math.max(1, Math.min(dx.shape[0], convOverride.dxImages ?? Infinity, Math.floor((65535 * lanes) / perClass)));
  meta.u[CM.NB] = images;
  ctx.rt.dispatch({
    kernel: 'conv2dBackwardInput', key: convKey(config), code: () => convWgsl(config),
    bindings: [{ buffer: dx.storage.buffer, write: true }, { buffer: dy.storage.buffer }, { buffer: w.storage.buffer }],
    meta: meta.u,
    workgroups: config.shareW
      ? [Math.ceil(dx.shape[1] / config.tm), Math.ceil((images * perClass) / lanes), Math.ceil(dx.shape[0] / images) * sh * sw]
      : grid1d(total),
  });
}

export function conv2dBackwardWeight(ctx: OpContext, x: GView, dy: GView, dw: GView, p: Conv2dParams): void {
  const total = numel(dw.shape);
  if (total === 0 || conv2dBackwardWeightSingleTap(ctx, x, dy, dw, p)) return;
  // dW as im2col + one GEMM (ops/conv-weight.ts) where a test, the tuner ('im2col') or the table (small maps) picks it.
  const viaGemm = convOverride.weightGemm ?? routeFor(ctx, 'backwardWeight', x, dw, p).im2col ?? convWeightGemm(ctx.tuning, dy.shape);
  if (viaGemm && convWeightViaGemm(ctx, x, dy, dw, p)) return;
  const config = { ...backwardConfig(ctx, 'backwardWeight', dw.shape[0], p), half: halfNames({ dw, x, dy }) };
  const meta = geometry(x, dw, dy, p);
  meta.u[CM.total] = total;
  const cols = dw.shape[1] * dw.shape[2] * dw.shape[3];
  ctx.rt.dispatch({
    kernel: 'conv2dBackwardWeight', key: convKey(config), code: () => convWgsl(config),
    bindings: [{ buffer: dw.storage.buffer, write: true }, { buffer: x.storage.buffer }, { buffer: dy.storage.buffer }],
    meta: meta.u,
    workgroups: config.shareW
      ? [Math.ceil(dw.shape[0] / config.tm), Math.ceil(cols / config.tn / config.wg[0]), 1]
      : grid1d(total),
  });
}
