// Quantized tensors vs PyTorch (tests/reference/gen_quant.py):
// quantizePerTensor / quantizePerChannel give PyTorch's integers exactly
// (ties to even after multiplying by the float32 reciprocal, clamping, every
// zero point) on every backend, and dequantize gives its floats; qScale,
// qZeroPoint and the per-channel accessors report what PyTorch reports.
import { describe, expect, it } from 'vitest';
import * as kiln from '@kiln/core';
import { describeEachBackend, webgpuStatus } from './helpers/env.js';
import { describeReference, type ReferenceFile } from './helpers/reference.js';
import { EXACT, expectClose } from './helpers/compare.js';

const webgpu = await webgpuStatus();

describeReference('quantized tensors', 'quant', (ref: ReferenceFile) => {
  describeEachBackend('quantize / dequantize', webgpu, (device) => {
    for (const c of ref.cases) {
      it(c.name, async () => {
        const rec = c.inputs[0]!;
        const x = kiln.fromArray(ref.values(rec), rec.shape, { device });
        const a = c.args as { scale: number; zeroPoint: number; scales: number[]; zeroPoints: number[]; axis: number; dtype: kiln.QDType };
        const q = c.op === 'quantize_per_tensor'
          ? kiln.quantizePerTensor(x, a.scale, a.zeroPoint, a.dtype)
          : kiln.quantizePerChannel(x, a.scales, a.zeroPoints, a.axis, a.dtype);
        expect(q.dtype).toBe(a.dtype);
        expect(q.shape).toEqual(rec.shape);
        const ints = q.intRepr();
        expect(ints.dtype).toBe(c.outputs[0]!.dtype);
        expectClose(await ints.toArray(), ref.values(c.outputs[0]!), EXACT, 'intRepr');
        // (q - zp) * scale is one float32 rounding here; PyTorch's AVX2 loop
        // computes fma(scale, q, -zp * scale), which can land one ulp away.
        const deq = q.dequantize();
        expectClose(await deq.toArray(), ref.values(c.outputs[1]!), { rtol: 2 ** -23, atol: 2 ** -23 * 256 * (a.scale ?? Math.max(...(a.scales ?? [1]))) }, 'dequantize');
        if (c.op === 'quantize_per_tensor') {
          expect(q.qScale()).toBe(a.scale);
          expect(q.qZeroPoint()).toBe(a.zeroPoint);
          expect(q.qscheme()).toBe('per_tensor_affine');
        } else {
          expect(q.qPerChannelAxis()).toBe(a.axis);
          expect(Array.from(await q.qPerChannelZeroPoints().toArray())).toEqual(a.zeroPoints);
          expectClose(await q.qPerChannelScales().toArray(), a.scales, { rtol: 2 ** -24, atol: 0 }, 'scales');
          expect(() => q.qScale()).toThrow(/qScale: expected a per-tensor/);
        }
        x.dispose(); q.dispose(); ints.dispose(); deq.dispose();
      });
    }
  });
});

describe('quantized tensor errors', () => {
  const x = kiln.randn([4, 3]);
  it('rejects a non-quantized dtype, a bad scale or zero point, a non-float input, a wrong channel count', () => {
    expect(() => kiln.quantizePerTensor(x, 0.1, 0, 'int8' as kiln.QDType)).toThrow(/quantizePerTensor: expected a quantized dtype/);
    expect(() => kiln.quantizePerTensor(x, 0, 0, 'quint8')).toThrow(/quantizePerTensor: scale must be a positive/);
    expect(() => kiln.quantizePerTensor(x, 0.1, 256, 'quint8')).toThrow(/zero point must be an integer in \[0, 255\]/);
    expect(() => kiln.quantizePerTensor(x.to('int32'), 0.1, 0, 'quint8')).toThrow(/expected a float32 input, got int32/);
    expect(() => kiln.quantizePerChannel(x, [0.1, 0.2], [0, 0], 1, 'qint8')).toThrow(/expected 3 scales and zero points/);
    expect(() => kiln.quantizePerChannel(x, [0.1], [0], 2, 'qint8')).toThrow(/axis 2 out of range/);
  });
  it('dispose frees the integers; intRepr shares them', () => {
    const q = kiln.quantizePerTensor(x, 0.1, 3, 'quint8');
    const ints = q.intRepr();
    expect(ints.dataPtr()).toBe(q.intRepr().dataPtr());
    q.dispose();
    expect(q.isDisposed).toBe(true);
    ints.dispose();
  });
});
