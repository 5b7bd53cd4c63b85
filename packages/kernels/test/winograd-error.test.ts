// Winograd's error against PyTorch on every 3x3 stride-1 conv shape of
// ResNet18 (tests/reference/gen_cnn.py's conv2dResnet cases: the model's
// channel counts on quarter-size maps, batch 1), forward and input
// gradient, for F(2x2) and F(4x4), next to the direct route. Each error is
// printed as a fraction of the conv parity tolerance of that case
// (tests/parity/cnn-table.ts: |got - want| <= t + t * |want| with
// t = CONV_TOL_PER_SQRT_K * sqrt(K), K the summed terms; 1.0 = exactly at it).
// F(2x2) must stay within it everywhere; F(4x4) must wherever the tuning
// table picks it (tuning.ts winogradTile).
import { afterAll, expect, it } from 'vitest';
import { describeReference, type RefCase, type ReferenceFile, type TensorRecord } from '@kiln/test-helpers';
import { backend, cpu, gpuDescribe } from './helpers.js';
import { convOverride } from '../src/ops/conv.js';
import { chooseTuning, winogradTile } from '../src/tuning.js';
import type { GPUStorage } from '../src/pool.js';
import type { View } from '@kiln/core';
import { CONV_TOL_PER_SQRT_K } from '../../../tests/parity/cnn-table.js';

function upload(ref: ReferenceFile, rec: TensorRecord): View<GPUStorage> {
  const data = ref.values(rec) as Float32Array;
  const s = backend().alloc(data.length, 'float32');
  backend().write(s, data);
  const strides = rec.shape.map((_, d) => rec.shape.slice(d + 1).reduce((a, b) => a * b, 1));
  return { storage: s, dtype: 'float32', shape: rec.shape, strides, offset: 0 };
}

/** max over elements of |got - want| / (t + t |want|), t the conv tolerance for K summed terms. */
async function tolFraction(got: View<GPUStorage>, want: Float32Array, K: number): Promise<number> {
  const g = (await backend().read(got.storage, 0, want.length)) as Float32Array;
  const t = CONV_TOL_PER_SQRT_K * Math.sqrt(K);
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(g[i]! - want[i]!) / (t + t * Math.abs(want[i]!)));
  return worst;
}

type Route = 0 | 2 | 4;
const ROUTES: Route[] = [0, 2, 4];
const rows: string[] = [];

gpuDescribe('winograd error vs PyTorch on ResNet18 conv shapes', () => {
  void cpu;
  describeReference('winograd error', 'cnn', (ref) => {
    const cases = ref.cases.filter((c: RefCase) => c.name.startsWith('conv2dResnet/') && /_k3s1_/.test(c.name));
    afterAll(() => {
      delete convOverride.winograd;
      console.log(`winograd error as a fraction of the conv tolerance (${CONV_TOL_PER_SQRT_K} * sqrt(K)), fwd / dx:\n  shape: direct | F2 | F4\n${rows.join('\n')}`);
    });
    it('covers every 3x3 stride-1 shape (layer1-4)', () => expect(cases.length).toBe(4));
    for (const c of cases) {
      it(c.name, async () => {
        const x = upload(ref, c.inputs[0]!);
        const w = upload(ref, c.inputs[1]!);
        const p = { stride: [1, 1] as [number, number], padding: [1, 1] as [number, number], dilation: [1, 1] as [number, number], groups: 1 };
        const yRec = c.outputs[0]!;
        const out = { ...upload(ref, yRec) };
        const dy = upload(ref, c.gradOutputs[0]!);
        const dx = upload(ref, c.inputs[0]!);
        const fr: Record<Route, [number, number]> = { 0: [0, 0], 2: [0, 0], 4: [0, 0] };
        for (const route of ROUTES) {
          convOverride.winograd = route;
          backend().conv2d(x, w, out, p);
          const f = await tolFraction(out, ref.values(yRec) as Float32Array, w.shape[1]! * 9);
          backend().conv2dBackwardInput(dy, w, dx, p);
          const b = await tolFraction(dx, ref.values(c.grads[0]!) as Float32Array, w.shape[0]! * 9);
          fr[route] = [f, b];
        }
        delete convOverride.winograd;
        rows.push(`  ${c.name.slice('conv2dResnet/'.length)}: ${ROUTES.map((r) => fr[r].map((v) => v.toFixed(3)).join(' / ')).join(' | ')}`);
        for (const v of [...fr[0], ...fr[2]]) expect(v).toBeLessThanOrEqual(1);
        // F(4x4) where the table would pick it (either strategy class).
        for (const strategy of ['cpu-like', 'gpu'] as const) {
          const t = chooseTuning(backend().info, strategy);
          const fwd = winogradTile(t, x.shape, w.shape, out.shape, p, 'forward');
          const bwd = winogradTile(t, dy.shape, w.shape, dx.shape, p, 'backwardInput');
          if (fwd === 4) expect(fr[4][0], `F4 forward picked for ${c.name}`).toBeLessThanOrEqual(1);
          if (bwd === 4) expect(fr[4][1], `F4 input grad picked for ${c.name}`).toBeLessThanOrEqual(1);
        }
        for (const v of [x, w, out, dy, dx]) backend().release(v.storage);
      }, 120_000);
    }
  });
});
