// HistogramObserver vs PyTorch 1.13 (tests/reference/gen_quant_histogram.py):
// the same seeded batches through torch.ao.quantization.HistogramObserver and
// Kiln's. Exact equality everywhere (no tolerance): the observer's arithmetic
// is float32 tensor ops and Python doubles in a fixed order, and Kiln replays
// that order on the host, so after every batch the histogram, min_val and
// max_val are PyTorch's bit for bit, and so are the min/max of the L2 search
// and the scale and zero point. Both backends (on WebGPU the batches are read
// back and folded in asynchronously; settle() waits for them).
import { describe, expect, it } from 'vitest';
import * as kiln from '@kiln/core';
import { Conv2d, Module, ReLU, quantization } from '@kiln/nn';
import type { QDType } from '@kiln/core';
import { nonLinearParamSearch } from '../packages/nn/src/quantization/observer-histogram-math.js';
import { describeEachBackend, webgpuStatus } from './helpers/env.js';
import { describeReference } from './helpers/reference.js';

const webgpu = await webgpuStatus();
const q = quantization;

interface HistArgs {
  dtype: QDType; qscheme: quantization.ObserverQScheme; reduceRange: boolean; batches: number;
  scale: number; zeroPoint: number; searchMin: number; searchMax: number;
}

describeReference('HistogramObserver', 'quant_histogram', (ref) => {
  describeEachBackend('HistogramObserver vs PyTorch', webgpu, (device) => {
    for (const c of ref.cases) {
      const a = c.args as unknown as HistArgs;
      it(`${c.name}: histogram, min and max after every batch, the L2 search and the qparams equal PyTorch's`, async () => {
        const obs = new q.HistogramObserver({ dtype: a.dtype, qscheme: a.qscheme, reduceRange: a.reduceRange });
        for (let b = 0; b < a.batches; b++) {
          const x = kiln.fromArray(ref.values(c.inputs[b]!), c.inputs[b]!.shape, { device });
          obs.call(x);
          x.dispose();
          await obs.settle();
          const st = obs.hostState();
          const [wantHist, wantMin, wantMax] = [0, 1, 2].map((k) => ref.values(c.outputs[3 * b + k]!));
          expect([b, st.min, st.max]).toEqual([b, wantMin![0], wantMax![0]]);
          expect(Array.from(st.histogram), `histogram after batch ${b}`).toEqual(Array.from(wantHist!));
          expect(Array.from(await obs.histogram.toArray())).toEqual(Array.from(wantHist!));
          expect(obs.histogram.device).toBe(device);
        }
        const st = obs.hostState();
        expect(nonLinearParamSearch(st.histogram, st.min, st.max, obs.dstBins)).toEqual([a.searchMin, a.searchMax]);
        const p = await obs.qparams();
        expect({ scale: p.scales[0], zeroPoint: p.zeroPoints[0] }).toEqual({ scale: a.scale, zeroPoint: a.zeroPoint });
        // PyTorch's buffer names; a fresh observer loaded from the state dict gives the same parameters.
        const sd = obs.stateDict();
        expect([...Object.keys(sd)].sort()).toEqual(['histogram', 'max_val', 'min_val']);
        const loaded = new q.HistogramObserver({ dtype: a.dtype, qscheme: a.qscheme, reduceRange: a.reduceRange });
        await loaded.to(device);
        loaded.loadStateDict(sd);
        const lp = await loaded.qparams();
        expect({ scale: lp.scales[0], zeroPoint: lp.zeroPoints[0] }).toEqual({ scale: a.scale, zeroPoint: a.zeroPoint });
      });
    }

    it('works as a qconfig activation observer: prepare -> calibrate -> convert', async () => {
      class Tiny extends Module {
        quant = new q.QuantStub();
        conv = new Conv2d(2, 3, 3, { padding: 1 });
        relu = new ReLU();
        dequant = new q.DeQuantStub();
        override forward(x: kiln.Tensor): kiln.Tensor {
          return this.dequant.call(this.relu.call(this.conv.call(this.quant.call(x))));
        }
      }
      const model = new Tiny();
      await model.to(device);
      model.eval();
      const prepared = q.prepare(q.fuseModules(model, [['conv', 'relu']]), { qconfig: q.histogramQConfig });
      const gen = new kiln.Generator(3);
      for (let i = 0; i < 2; i++) kiln.tidy(() => prepared.call(kiln.randn([2, 2, 6, 6], { generator: gen }).to(device)));
      const converted = await q.convert(prepared);
      const quant = converted.getSubmodule('quant') as unknown as { scale: number; zeroPoint: number };
      // reduce_range quint8: zero points in 0..127.
      expect(quant.scale).toBeGreaterThan(0);
      expect(quant.zeroPoint).toBeGreaterThanOrEqual(0);
      expect(quant.zeroPoint).toBeLessThanOrEqual(127);
      const y = converted.call(kiln.ones([1, 2, 6, 6]).to(device));
      expect(y.shape).toEqual([1, 3, 6, 6]);
    });

    it("getDefaultQConfig: 'x86'/'fbgemm' quantize activations to 7 bits, 'onednn' to the full quint8 range", async () => {
      class Stem extends Module {
        quant = new q.QuantStub();
        conv = new Conv2d(2, 3, 3, { padding: 1 });
        dequant = new q.DeQuantStub();
        override forward(x: kiln.Tensor): kiln.Tensor {
          return this.dequant.call(this.conv.call(this.quant.call(x)));
        }
      }
      const batches = [0, 1].map((i) => kiln.randn([2, 2, 6, 6], { generator: new kiln.Generator(11 + i) }).to(device));
      const stubQParams = async (qconfig: quantization.QConfig) => {
        const model = new Stem();
        await model.to(device);
        const prepared = q.prepare(model.eval(), { qconfig });
        for (const x of batches) kiln.tidy(() => prepared.call(x));
        const quant = (await q.convert(prepared)).getSubmodule('quant') as unknown as { scale: number; zeroPoint: number };
        return { scale: quant.scale, zeroPoint: quant.zeroPoint };
      };
      // The stub's parameters are those of a standalone observer with the engine's reduce_range on the same batches.
      const alone = async (reduceRange: boolean) => {
        const obs = new q.HistogramObserver({ dtype: 'quint8', qscheme: 'per_tensor_affine', reduceRange });
        for (const x of batches) obs.call(x);
        const p = await obs.qparams();
        return { scale: p.scales[0], zeroPoint: p.zeroPoints[0] };
      };
      const [x86, onednn] = [await stubQParams(q.getDefaultQConfig('x86')), await stubQParams(q.getDefaultQConfig('onednn'))];
      expect(x86).toEqual(await alone(true));
      expect(onednn).toEqual(await alone(false));
      // One more bit: the full-range step is about half the 7-bit one (255 vs 127 steps over the same clipped range).
      expect(onednn.scale / x86.scale).toBeGreaterThan(0.45);
      expect(onednn.scale / x86.scale).toBeLessThan(0.55);
      expect(q.getDefaultQConfig()).toBe(q.histogramQConfig);
      expect(q.getDefaultQConfig('fbgemm')).toBe(q.histogramQConfig);
      expect(q.getDefaultQConfig('onednn')).toBe(q.onednnQConfig);
      batches.forEach((x) => x.dispose());
    });
  });
});

describe('HistogramObserver errors', () => {
  it('rejects per-channel schemes and bad bin counts, and qparams before any data', async () => {
    expect(() => new q.HistogramObserver({ qscheme: 'per_channel_affine' })).toThrow(/HistogramObserver: expected per_tensor_affine or per_tensor_symmetric, got per_channel_affine/);
    expect(() => new q.HistogramObserver({ bins: 0 })).toThrow(/HistogramObserver: expected a positive integer number of bins, got 0/);
    await expect(new q.HistogramObserver().qparams()).rejects.toThrow(/calculateQparams: HistogramObserver has not observed any data/);
    expect(() => q.getDefaultQConfig('qnnpack' as quantization.QEngine)).toThrow(/getDefaultQConfig: expected 'x86', 'fbgemm' or 'onednn', got "qnnpack" \(qnnpack's per-tensor weights are not supported/);
  });
});
