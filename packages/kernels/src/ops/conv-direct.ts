/**
 * Backend glue of the vec4 direct conv forward (wgsl/conv-direct.ts): the
 * checks that the input's rows are vec4-aligned, and the dispatch. The
 * caller (ops/conv.ts) has built the meta and epilogue bindings it shares
 * with the scalar direct kernel.
 */
import type { Conv2dParams, View } from '@kiln/core';
import type { OpContext } from '../backend.js';
import type { GPUStorage } from '../pool.js';
import { convDirectKey, convDirectWgsl, DIRECT4_PLAIN_WG, type ConvDirectConfig } from '../wgsl/conv-direct.js';
import { convBlock } from '../tuning.js';
import type { Meta } from './elementwise.js';

type GView = View<GPUStorage>;
type Binding = { buffer: GPUBuffer; write?: boolean };

/** Output pixels per thread (one vec4 of consecutive pixels in a row). */
const TN = 4;
/** Widest kernel the generator unrolls (every tap is a line of WGSL). */
const MAX_KW = 11;

/** Benchmark hook: block fields set here override the defaults (tm a multiple of the subgroup size when subgroups are used, tn of 4). */
export const direct4Block: { tm?: number; tn?: number } = {};

/** Whether the vec4 kernel can run this conv: float32, ungrouped, undilated, vec4-aligned input rows. */
export function direct4Eligible(x: { shape: readonly number[]; strides?: readonly number[]; offset?: number; dtype?: string }, w: readonly number[], p: Conv2dParams): boolean {
  const [, , , W] = x.shape;
  const KW = w[3]!;
  if (p.groups !== 1 || p.dilation[0] !== 1 || p.dilation[1] !== 1 || KW > MAX_KW || p.stride[1] > 4) return false;
  if (W! % 4 !== 0 || (x.dtype !== undefined && x.dtype !== 'float32')) return false;
  if (!x.strides) return true; // a shape-only question (the autotuner's candidate list): dense rows
  const [sn, sc, sh, sw] = x.strides;
  const n = x.shape[0]!;
  const c = x.shape[1]!;
  return sw === 1 && sh! % 4 === 0 && (c === 1 || sc! % 4 === 0) && (n === 1 || sn! % 4 === 0) && (x.offset ?? 0) % 4 === 0;
}

/**
 * Runs the conv with the vec4 kernel when it applies (false: the caller
 * takes the scalar direct kernel). `meta` and `bindings` are the scalar
 * kernel's: geometry, epilogue flags; out, x, w, bias, residual.
 */
export function convDirect4(ctx: OpContext, x: GView, w: GView, out: GView, p: Conv2dParams, meta: Meta, bindings: Binding[], epilogue: GView[]): boolean {
  if (!direct4Eligible(x, w.shape, p) || [w, out, ...epilogue].some((v) => v.dtype !== 'float32')) return false;
  const [N, O, OH, OW] = out.shape;
  // With subgroups TM = S (one weight load per lane per tap): on lavapipe's stem (N=1, load 9,
  // best of interleaved rounds) 7.7-18.4 ms against 2S's 21.4-22.5 and the scalar kernel's 9.6-28.8.
  const block = convBlock(ctx.tuning, O, 1);
  const config: ConvDirectConfig = {
    tm: direct4Block.tm ?? (block.shareW || block.tm), tn: direct4Block.tn ?? TN, shareW: block.shareW, kw: w.shape[3], sw: p.stride[1], phase: (((-p.padding[1]) % 4) + 4) % 4,
  };
  const tiles = N * OH * Math.ceil(OW / config.tn);
  const [wx, wy] = config.shareW ? [config.shareW, 1] : DIRECT4_PLAIN_WG;
  const pixelGroups = Math.ceil(tiles / wx);
  const channelGroups = Math.ceil(O / config.tm / wy);
  if (pixelGroups > 65535 || channelGroups > 65535) return false;
  ctx.rt.dispatch({
    kernel: 'conv2d.direct4',
    key: convDirectKey(config),
    code: () => convDirectWgsl(config),
    bindings,
    meta: meta.u,
    workgroups: config.shareW ? [channelGroups, pixelGroups, 1] : [pixelGroups, channelGroups, 1],
  });
  return true;
}
