/**
 * The weight gradient of an ungrouped conv as im2col + one GEMM:
 * dW[O, C*KH*KW] = dyT[O, N*P] @ col[N*P, C*KH*KW] (P = OH*OW), reducing
 * over every image's output pixels at once. col is the im2col panel with
 * one row per tap over the batch's pixels (wgsl/conv.ts `batchCols`), dyT
 * a copy of dy with its channels first; both rows padded with zeros to a
 * multiple of 4, so the GEMM reads both operands as vec4 along its K.
 *
 * One GEMM per image chained through the residual epilogue ran before
 * (on lavapipe, N=8 at 224x224: won layer2-3's stride-2 3x3 and 1x1 shapes,
 * lost the stride-1 3x3 shapes, whose P = 49 rows it read as scalars); on
 * small maps its per-image K (P = 1 to 16) left the GEMM nothing to do per
 * dispatch. See tuning.ts `convWeightGemm` for where the table takes it.
 */
import type { Conv2dParams, View } from '@kiln/core';
import type { OpContext } from '../backend.js';
import type { GPUStorage } from '../pool.js';
import { convKey, convWgsl, type ConvConfig } from '../wgsl/conv.js';
import { geometry, flatSpatial } from './conv.js';
import { copy } from './elementwise.js';
import { gemm } from './matmul.js';

type GView = View<GPUStorage>;

/** Runs dW as im2col + one GEMM when it applies (float32, ungrouped, dense dW); false: the caller's kernel. */
export function convWeightViaGemm(ctx: OpContext, x: GView, dy: GView, dw: GView, p: Conv2dParams): boolean {
  const [O, CG, KH, KW] = dw.shape;
  const [N, , OH, OW] = dy.shape;
  const K = CG * KH * KW;
  const P = OH * OW;
  const dense = dw.strides[3] === 1 && dw.strides[2] === KW && dw.strides[1] === KH * KW && dw.strides[0] === K;
  const dyb = flatSpatial(dy);
  if (p.groups !== 1 || !dense || !dyb || [x, dy, dw].some((v) => v.dtype !== 'float32')) return false;
  // im2col's f32 quotients are exact below 2^22; its grid has K rows in y.
  if (N * P + 4 >= 2 ** 22 || K > 65535 || N === 0) return false;
  const cols = Math.ceil((N * P) / 4) * 4;
  const col = ctx.alloc(K * cols, 'float32');
  const config: ConvConfig = { kind: 'im2col', tm: 1, tn: 1, wg: [1, 1], shareW: 0, batchCols: true };
  ctx.rt.dispatch({
    kernel: 'im2col', key: convKey(config), code: () => convWgsl(config),
    bindings: [{ buffer: col.buffer, write: true }, { buffer: x.storage.buffer }],
    meta: geometry(x, dw, dy, p).u, workgroups: [Math.ceil(cols / 4 / 64), K, 1],
  });
  const dyT = ctx.alloc(O * cols, 'float32');
  if (cols !== N * P) ctx.rt.clearBuffer(dyT.buffer, 0, O * cols * 4);
  const [sn, so, sp] = dyb.strides;
  copy(ctx.rt, { ...dyb, shape: [O, N, P], strides: [so!, sn!, sp!] },
    { storage: dyT, dtype: 'float32', shape: [O, N, P], strides: [cols, P, 1], offset: 0 });
  gemm(ctx, {
    a: { storage: dyT, dtype: 'float32', shape: [1, O, cols], strides: [0, cols, 1], offset: 0 },
    b: { storage: col, dtype: 'float32', shape: [1, cols, K], strides: [0, 1, cols], offset: 0 },
    out: { ...dw, shape: [1, O, K], strides: [0, K, 1] },
  });
  ctx.release(col);
  ctx.release(dyT);
  return true;
}
