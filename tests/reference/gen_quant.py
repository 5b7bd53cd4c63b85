"""PyTorch reference for quantized tensors: torch.quantize_per_tensor,
torch.quantize_per_channel, int_repr, dequantize (tests/quant.tensor.test.ts).

Inputs stress the rounding rules: exact ties (k + 0.5) * scale, which PyTorch
rounds half to even after multiplying by the float32 reciprocal of the
scale; values far outside the range (clamping); scales that are not powers
of two; every zero point position. Values whose x / scale overflows int32
(3e38) are left out: PyTorch's result there is int32 overflow, not a rule. Engine: Debian's torch has no fbgemm, so
the quantizer is ATen's native one (quantize_val / its AVX2 loop) on every
engine; onednn is selected to match the other quantization generators.
"""

import torch

from common import seed, writer_from_argv

torch.backends.quantized.engine = 'onednn'
w = writer_from_argv(__file__)
seed(0)

QDTYPES = {'quint8': torch.quint8, 'qint8': torch.qint8, 'qint32': torch.qint32}


def record(name, op, x, q, **args):
    w.cases.append({
        'name': name, 'op': op, 'args': args,
        'inputs': [{**w.tensor(x), 'requiresGrad': False}],
        'outputs': [w.tensor(q.int_repr()), w.tensor(q.dequantize())],
        'gradOutputs': [None, None], 'grads': [None],
    })


def inputs(scale, n=257):
    ties = (torch.arange(-20, 20, dtype=torch.float64) + 0.5) * scale
    return torch.cat([
        torch.randn(n) * scale * 40,
        ties.float(),
        torch.tensor([0.0, -0.0, 1e6, -1e6, 1e9, -1e9, scale * 127.5, -scale * 128.5, scale * 255.5]),
    ])


for dtype in ['quint8', 'qint8', 'qint32']:
    zps = {'quint8': [0, 128, 77, 255], 'qint8': [0, -3, 127, -128], 'qint32': [0]}[dtype]  # qint32 (biases) has zero point 0; PyTorch's int32 (q - zp) wraps at the extremes
    for scale in [0.1, 0.05, 1 / 3, 0.0078125, 1e-3, 2.5]:
        for zp in zps:
            x = inputs(scale)
            q = torch.quantize_per_tensor(x, scale, zp, QDTYPES[dtype])
            record(f'per_tensor_{dtype}_s{scale:.6g}_z{zp}', 'quantize_per_tensor', x, q,
                   scale=float(q.q_scale()), zeroPoint=int(q.q_zero_point()), dtype=dtype)

for dtype in ['quint8', 'qint8']:
    for axis, shape in [(0, [5, 7]), (1, [3, 6, 4]), (2, [2, 3, 5])]:
        c = shape[axis]
        scales = (torch.rand(c, dtype=torch.float64) * 0.2 + 0.01)
        lo = 0 if dtype == 'quint8' else -128
        zps = torch.randint(lo, lo + 256, (c,))
        x = torch.randn(shape) * 3
        q = torch.quantize_per_channel(x, scales, zps, axis, QDTYPES[dtype])
        record(f'per_channel_{dtype}_axis{axis}_{"x".join(map(str, shape))}', 'quantize_per_channel', x, q,
               scales=[float(s) for s in q.q_per_channel_scales()], zeroPoints=[int(z) for z in q.q_per_channel_zero_points()],
               axis=int(q.q_per_channel_axis()), dtype=dtype)

w.save()
