// Dynamic quantization vs PyTorch 1.13 (tests/reference/gen_quant_dynamic.py,
// onednn = fbgemm's x86 semantics): quantizeDynamic(model, { types: [Linear],
// dtype: 'qint8' }) on the seeded ResNet18 fc, a Linear whose in_features is
// not a multiple of 4, per-channel weights and a two-layer model, on both
// backends and on awkward inputs (all-positive, all-negative, constant, zero,
// huge range, tiny). Integer representations (weights, the activation's
// scale / zero point / integers) equal PyTorch's exactly; outputs are within
// 1e-5 of the output's scale (its largest magnitude).
import { describe, expect, it } from 'vitest';
import * as kiln from '@kiln/core';
import { Linear, Module, ReLU, Sequential, quantization, quantizeDynamic, loadSafetensors, saveSafetensors } from '@kiln/nn';
import { describeEachBackend, webgpuStatus } from './helpers/env.js';
import { describeReference, type ReferenceFile, type RefCase } from './helpers/reference.js';
import { EXACT, expectClose } from './helpers/compare.js';

const webgpu = await webgpuStatus();

interface LayerArgs { layer: string; perChannel: boolean; weightScales: number[]; weightZeroPoints: number[]; inputScale: number; inputZeroPoint: number }

function floatLinear(ref: ReferenceFile, c: RefCase, device: string): Linear {
  const [wRec, bRec] = c.inputs as [RefCase['inputs'][0], RefCase['inputs'][0]];
  const m = new Linear(wRec.shape[1]!, wRec.shape[0]!, { device });
  kiln.noGrad(() => {
    m.weight.copy_(kiln.fromArray(ref.values(wRec), wRec.shape, { device }));
    m.bias!.copy_(kiln.fromArray(ref.values(bRec), bRec.shape, { device }));
  });
  return m;
}

describeReference('dynamic quantization', 'quant_dynamic', (ref) => {
  describeEachBackend('quantizeDynamic vs torch.quantization.quantize_dynamic', webgpu, (device) => {
    const layers = new Map<string, Promise<{ float: Linear; q: quantization.DynamicQuantizedLinear }>>();
    const layerFor = (name: string) => {
      let p = layers.get(name);
      if (!p) {
        const c = ref.cases.find((x) => x.name === `${name}/weight`)!;
        const float = floatLinear(ref, c, device);
        const perChannel = (c.args as unknown as LayerArgs).perChannel;
        p = quantizeDynamic(float, { types: [Linear], dtype: 'qint8', weightScheme: perChannel ? 'per_channel' : 'per_tensor' })
          .then((q) => ({ float, q: q as unknown as quantization.DynamicQuantizedLinear }));
        layers.set(name, p);
      }
      return p;
    };

    for (const c of ref.cases.filter((x) => x.op === 'weight')) {
      it(`${c.name}: int8 weight, scale and zero point equal PyTorch's`, async () => {
        const a = c.args as unknown as LayerArgs;
        const { q } = await layerFor(a.layer);
        expect(q).toBeInstanceOf(quantization.DynamicQuantizedLinear);
        const qw = q.weight();
        expect(qw.dtype).toBe('qint8');
        expectClose(await qw.intRepr().toArray(), ref.values(c.outputs[0]!), EXACT, 'weight intRepr');
        if (a.perChannel) {
          expect(qw.qscheme()).toBe('per_channel_affine');
          expect(qw.perChannelParams().scales).toEqual(a.weightScales);
          expect(qw.perChannelParams().zeroPoints).toEqual(a.weightZeroPoints);
        } else {
          expect(qw.qscheme()).toBe('per_tensor_affine');
          expect(qw.qScale()).toBe(a.weightScales[0]);
          expect(qw.qZeroPoint()).toBe(0);
        }
        qw.dispose();
      });
    }

    for (const c of ref.cases.filter((x) => x.op === 'forward')) {
      it(`${c.name}: activation scale, zero point and integers exact; output within 1e-5 of its scale`, async () => {
        const a = c.args as unknown as LayerArgs;
        const { q } = await layerFor(a.layer);
        const rec = c.inputs[0]!;
        const x = kiln.fromArray(ref.values(rec), rec.shape, { device });
        // The activation parameters the layer computes on the device, by the same rule.
        const p = quantization.chooseQuantizationParams(x.min().reshape([1]), x.max().reshape([1]), 0, 127);
        expect((await p.scale.toArray())[0]).toBe(Math.fround(a.inputScale));
        expect((await p.zeroPoint.toArray())[0]).toBe(a.inputZeroPoint);
        const xq = kiln.quantizeInts(x, p.inv, p.zeroPoint, 'quint8');
        expectClose(await xq.toArray(), ref.values(c.outputs[0]!), EXACT, 'activation intRepr');
        const y = q.call(x);
        const want = ref.values(c.outputs[1]!);
        const outScale = Array.from(want).reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        expectClose(await y.toArray(), want, { rtol: 0, atol: 1e-5 * outScale }, 'output');
        for (const t of [x, p.scale, p.inv, p.zeroPoint, xq, y]) t.dispose();
      });
    }

    it('a model: only its Linear layers are replaced, the float model is unchanged, outputs match PyTorch', async () => {
      const c = ref.cases.find((x) => x.name === 'mlp/forward')!;
      const model = new Sequential(new Linear(20, 16, { device }), new ReLU(), new Linear(16, 5, { device }));
      const params = model.parameters();
      kiln.noGrad(() => params.forEach((t, i) => t.copy_(kiln.fromArray(ref.values(c.inputs[i]!), c.inputs[i]!.shape, { device }))));
      const qm = await quantizeDynamic(model, { types: [Linear], dtype: 'qint8' });
      expect(qm).not.toBe(model);
      expect(model.getSubmodule('0')).toBeInstanceOf(Linear);
      expect(qm.getSubmodule('0')).toBeInstanceOf(quantization.DynamicQuantizedLinear);
      expect(qm.getSubmodule('1')).toBeInstanceOf(ReLU);
      const xr = c.inputs[4]!;
      const x = kiln.fromArray(ref.values(xr), xr.shape, { device });
      const want = ref.values(c.outputs[0]!);
      const outScale = Array.from(want).reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      expectClose(await qm.call(x).toArray(), want, { rtol: 0, atol: 1e-5 * outScale }, 'quantized model');
      expectClose(await model.call(x).toArray(), ref.values(c.outputs[1]!), { rtol: 1e-5, atol: 1e-6 }, 'float model untouched');
      expect(String(qm)).toContain('DynamicQuantizedLinear(in_features=20, out_features=16, dtype=torch.qint8, qscheme=torch.per_tensor_affine)');
    });

    it('state dict: int8 weight + scale + zero point + bias, saved and loaded through safetensors; ~4x smaller than float', async () => {
      const { float, q } = await layerFor('fc');
      const sd = q.stateDict();
      expect(Object.keys(sd)).toEqual(['_packed_params.weight', '_packed_params.weight_scale', '_packed_params.weight_zero_point', '_packed_params.bias']);
      expect(sd['_packed_params.weight']!.dtype).toBe('int8');
      const bytes = await saveSafetensors(sd);
      const loaded = loadSafetensors(bytes, { device: 'cpu' });
      // A second layer, quantized from a different float layer, takes the first one's state.
      const other = await quantizeDynamic(new Linear(512, 1000, { device }), { types: [Linear] }) as unknown as quantization.DynamicQuantizedLinear;
      other.loadStateDict(loaded);
      expect(other.weight().qScale()).toBe(q.weight().qScale());
      const x = kiln.randn([3, 512], { device });
      expectClose(await other.call(x).toArray(), await q.call(x).toArray(), EXACT, 'loaded layer output');
      const size = ref.cases.find((x) => x.name === 'fc/size')!.args as { floatBytes: number; quantizedBytes: number };
      const [row] = quantization.sizeReport(new Sequential(float), new Sequential(q));
      expect(row!.floatBytes).toBe(512 * 1000 * 4 + 1000 * 4);
      expect(row!.quantizedBytes).toBe(512 * 1000 + 4 + 4 + 1000 * 4);
      // PyTorch's torch.save sizes shrink by the same factor (its pickle adds framing, ours nothing).
      expect(row!.ratio).toBeCloseTo(size.floatBytes / size.quantizedBytes, 1);
      expect(quantization.formatSizeReport([row!])).toMatch(/0\s+2052000\s+516008\s+3\.98x/);
    });
  });
});

describe('quantizeDynamic errors', () => {
  it('rejects a non-int8 dtype and unsupported module types, naming the function', async () => {
    const m = new Sequential(new Linear(4, 4));
    await expect(quantizeDynamic(m, { dtype: 'float16' })).rejects.toThrow(/quantizeDynamic: expected dtype 'qint8', got 'float16'/);
    class Custom extends Module {}
    await expect(quantizeDynamic(m, { types: [Custom] })).rejects.toThrow(/quantizeDynamic: unsupported module type Custom/);
  });
  it('a quantized Linear rejects a QTensor or a wrong width', async () => {
    const q = await quantizeDynamic(new Linear(8, 3));
    expect(() => q.call(kiln.randn([2, 7]))).toThrow(/expected input \[\.\.\., 8\]/);
  });
});
