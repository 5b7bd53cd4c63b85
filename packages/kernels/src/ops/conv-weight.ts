/**
 * The weight gradient of an ungrouped conv as im2col + GEMMs:
 * dW[O, C*KH*KW] = sum over n of dy[n][O, P] @ col[n][P, C*KH*KW] (P = OH*OW),
 * col being the forward's im2col panel of x (wgsl/conv.ts, rows padded to
 * 4). One GEMM per image, each adding the previous image's partial sum
 * through the GEMM's residual epilogue; two buffers take turns (a binding
 * may not be read and written at once) so the last image's GEMM writes dW.
 * The GEMM reads dy rows and panel rows along P, as vec4 where P % 4 == 0.
 *
 * Not the table's route: on lavapipe (N=8, ResNet18's shapes, GPU
 * timestamps, load 15, two runs) it won the stride-2 3x3 and 1x1 shapes of
 * layers 2-3 (layer3.0.conv1 87 vs 129 ms, layer3.0.downsample 11 vs 22 ms)
 * and lost the stride-1 3x3 of layers 1, 2 and 4 (331 vs 207, 257 vs 201,
 * 476 vs 219 ms: few rows per image, or P = 49 read as scalars); the stem
 * won once and lost once (157 vs 371, 236 vs 185 ms). Too close and too
 * noisy for a fixed rule, so the autotuner times both per shape (route
 * 'im2col' of a 'backwardWeight' shape).
 */
import type { Conv2dParams, View } from '@kiln/core';
import type { OpContext } from '../backend.js';
import type { GPUStorage } from '../pool.js';
import { convKey, convWgsl, type ConvConfig } from '../wgsl/conv.js';
import { geometry, flatSpatial } from './conv.js';
import { gemm } from './matmul.js';

type GView = View<GPUStorage>;

/** Runs dW as im2col + GEMMs when it applies (float32, ungrouped, dense dW); false: the caller's kernel. */
export function convWeightViaGemm(ctx: OpContext, x: GView, dy: GView, dw: GView, p: Conv2dParams): boolean {
  const [O, CG, KH, KW] = dw.shape;
  const [N, , OH, OW] = dy.shape;
  const K = CG * KH * KW;
  const P = OH * OW;
  const dense = dw.strides[3] === 1 && dw.strides[2] === KW && dw.strides[1] === KH * KW && dw.strides[0] === K;
  const dyb = flatSpatial(dy);
  if (p.groups !== 1 || !dense || !dyb || [x, dy, dw].some((v) => v.dtype !== 'float32')) return false;
  if (P + 4 >= 2 ** 22 || K > 65535 || N > 65535 || N === 0) return false;
  const rowP = Math.ceil(P / 4) * 4;
  const col = ctx.alloc(N * K * rowP, 'float32');
  const config: ConvConfig = { kind: 'im2col', tm: 1, tn: 1, wg: [1, 1], shareW: 0 };
  const meta = geometry(x, dw, dy, p);
  ctx.rt.dispatch({
    kernel: 'im2col', key: convKey(config), code: () => convWgsl(config),
    bindings: [{ buffer: col.buffer, write: true }, { buffer: x.storage.buffer }],
    meta: meta.u, workgroups: [Math.ceil(rowP / 4 / 64), K, N],
  });
  const out = (st: GPUStorage, offset: number): GView => ({ storage: st, dtype: 'float32', shape: [1, O, K], strides: [0, K, 1], offset });
  const dwOut = out(dw.storage, dw.offset);
  const spare = N > 1 ? ctx.alloc(O * K, 'float32') : null;
  const scratch = spare ? out(spare, 0) : null;
  let prev: GView | undefined;
  for (let n = 0; n < N; n++) {
    // Images n and N-1 share a parity with dW's turn: the last write lands in dW.
    const target = (N - 1 - n) % 2 === 0 ? dwOut : scratch!;
    const a: GView = { ...dyb, shape: [1, O, P], strides: [0, dyb.strides[1]!, dyb.strides[2]!], offset: dyb.offset + n * dyb.strides[0]! };
    const b: GView = { storage: col, dtype: 'float32', shape: [1, P, K], strides: [0, 1, rowP], offset: n * K * rowP };
    gemm(ctx, { a, b, out: target, residual: prev });
    prev = target;
  }
  ctx.release(col);
  if (spare) ctx.release(spare);
  return true;
}
