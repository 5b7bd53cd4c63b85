/** Backend glue for conv2d and its two backward primitives. */
import type { Conv2dParams, MatmulEpilogue, View } from '@kiln/core';
import type { OpContext } from '../backend.js';
import type { GPUStorage } from '../pool.js';
import { grid1d } from '../wgsl/common.js';
import { CM, CONV_WG, convKey, convWgsl, type ConvConfig } from '../wgsl/conv.js';
import { numel } from '../views.js';
import { Meta } from './elementwise.js';
import { gemm } from './matmul.js';

type GView = View<GPUStorage>;
type Epilogue = Omit<MatmulEpilogue<GPUStorage>, 'biasAxis' | 'alpha'>;

function geometry(x: GView, w: GView, y: GView, p: Conv2dParams): Meta {
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
function flatSpatial(v: GView): GView | null {
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

function tmFor(og: number): number {
  return og % 4 === 0 ? 4 : og % 2 === 0 ? 2 : 1;
}

export function conv2d(ctx: OpContext, x: GView, w: GView, out: GView, p: Conv2dParams, e: Epilogue = {}): void {
  if (numel(out.shape) === 0) return;
  if (conv1x1AsGemm(ctx, x, w, out, p, e)) return;
  const og = w.shape[0] / p.groups;
  const config: ConvConfig = { kind: 'forward', tm: tmFor(og), tn: 4, bias: !!e.bias, residual: !!e.residual, relu: !!e.relu };
  const meta = geometry(x, w, out, p);
  if (e.bias) meta.set(CM.bias, [e.bias.offset, e.bias.strides[0] ?? 0]);
  if (e.residual) meta.set(CM.res, [e.residual.offset, ...e.residual.strides]);
  const bindings = [{ buffer: out.storage.buffer, write: true }, { buffer: x.storage.buffer }, { buffer: w.storage.buffer }];
  if (e.bias) bindings.push({ buffer: e.bias.storage.buffer });
  if (e.residual) bindings.push({ buffer: e.residual.storage.buffer });
  const pixels = out.shape[0] * out.shape[2] * out.shape[3];
  ctx.rt.dispatch({
    kernel: 'conv2d',
    key: convKey(config),
    code: () => convWgsl(config),
    bindings,
    meta: meta.u,
    workgroups: [Math.ceil(pixels / config.tn / CONV_WG[0]), Math.ceil(out.shape[1] / config.tm / CONV_WG[1]), 1],
  });
}

export function conv2dBackwardInput(ctx: OpContext, dy: GView, w: GView, dx: GView, p: Conv2dParams): void {
  const total = numel(dx.shape);
  if (total === 0) return;
  const config: ConvConfig = { kind: 'backwardInput', tm: 1, tn: 1, bias: false, residual: false, relu: false };
  const meta = geometry(dx, w, dy, p);
  meta.u[CM.total] = total;
  ctx.rt.dispatch({
    kernel: 'conv2dBackwardInput', key: convKey(config), code: () => convWgsl(config),
    bindings: [{ buffer: dx.storage.buffer, write: true }, { buffer: dy.storage.buffer }, { buffer: w.storage.buffer }],
    meta: meta.u, workgroups: grid1d(total),
  });
}

export function conv2dBackwardWeight(ctx: OpContext, x: GView, dy: GView, dw: GView, p: Conv2dParams): void {
  const total = numel(dw.shape);
  if (total === 0) return;
  const config: ConvConfig = { kind: 'backwardWeight', tm: 1, tn: 1, bias: false, residual: false, relu: false };
  const meta = geometry(x, dw, dy, p);
  meta.u[CM.total] = total;
  ctx.rt.dispatch({
    kernel: 'conv2dBackwardWeight', key: convKey(config), code: () => convWgsl(config),
    bindings: [{ buffer: dw.storage.buffer, write: true }, { buffer: x.storage.buffer }, { buffer: dy.storage.buffer }],
    meta: meta.u, workgroups: grid1d(total),
  });
}
