"""PyTorch reference for dynamic quantization (tests/quant.dynamic.test.ts):
torch.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8).

Engine: Debian's torch 1.13 has no fbgemm, so the quantized engine is onednn,
which follows the same x86 semantics as fbgemm: weights per-tensor symmetric
qint8 from a MinMax observer (per-channel symmetric with
per_channel_dynamic_qconfig), activations quantized per call to quint8 over
the input's min/max widened to 0, with reduce_range (0..127), by C++
ChooseQuantizationParams; int32 accumulation; float output plus bias.

Per case: the input, its activation scale / zero point
(torch._choose_qparams_per_tensor, the same C++ routine), its integer
representation (torch.quantize_per_tensor with them), the quantized
layer's output, and the weight's int_repr / scale / zero point. Layers: the
seeded torchvision resnet18's fc (Linear(512, 1000)) and a small
Linear(13, 7) whose in_features is not a multiple of 4; a two-Linear
Sequential checks quantize_dynamic on a model. `torch.save` sizes of the fc
layer's float and quantized state dicts are recorded for the size report.
"""
import io

import torch
import torchvision

from common import seed, writer_from_argv

torch.backends.quantized.engine = 'onednn'
w = writer_from_argv(__file__)
seed(0)

fc = torchvision.models.resnet18().fc.eval()
small = torch.nn.Linear(13, 7).eval()
mlp = torch.nn.Sequential(torch.nn.Linear(20, 16), torch.nn.ReLU(), torch.nn.Linear(16, 5)).eval()


def awkward(k, batch):
    g = torch.Generator().manual_seed(k * 31 + batch)
    r = lambda: torch.randn(batch, k, generator=g)
    return {
        'normal': r(),
        'all_positive': r().abs() + 0.5,
        'all_negative': -r().abs() - 0.01,
        'constant': torch.full((batch, k), 0.75),
        'zeros': torch.zeros(batch, k),
        'huge_range': r() * torch.logspace(-3, 4, k),
        'tiny': r() * 1e-6,
    }


def tensor_in(t):
    return {**w.tensor(t), 'requiresGrad': False}


def record_layer(name, layer, qconfig):
    q = torch.quantization.quantize_dynamic(torch.nn.Sequential(layer), qconfig, dtype=torch.qint8)[0]
    qw = q.weight()
    per_channel = qw.qscheme() == torch.per_channel_affine
    scales = [float(s) for s in qw.q_per_channel_scales()] if per_channel else [float(qw.q_scale())]
    zps = [int(z) for z in qw.q_per_channel_zero_points()] if per_channel else [int(qw.q_zero_point())]
    layer_args = {'layer': name, 'perChannel': per_channel, 'weightScales': scales, 'weightZeroPoints': zps}
    params = [tensor_in(layer.weight.detach()), tensor_in(layer.bias.detach())]
    w.cases.append({'name': f'{name}/weight', 'op': 'weight', 'args': layer_args, 'inputs': params,
                    'outputs': [w.tensor(qw.int_repr())], 'gradOutputs': [None], 'grads': [None, None]})
    for batch in [1, 4]:
        for kind, x in awkward(layer.in_features, batch).items():
            scale, zp = torch._choose_qparams_per_tensor(x, True)
            xq = torch.quantize_per_tensor(x, scale, zp, torch.quint8).int_repr()
            y = q(x)
            w.cases.append({'name': f'{name}/{kind}_b{batch}', 'op': 'forward',
                            'args': {**layer_args, 'inputScale': float(scale), 'inputZeroPoint': int(zp)},
                            'inputs': [tensor_in(x)], 'outputs': [w.tensor(xq), w.tensor(y)],
                            'gradOutputs': [None, None], 'grads': [None]})
    return q


q_fc = record_layer('fc', fc, {torch.nn.Linear})
record_layer('small', small, {torch.nn.Linear})
record_layer('fc_per_channel', fc, {torch.nn.Linear: torch.quantization.per_channel_dynamic_qconfig})


def saved_bytes(module):
    buf = io.BytesIO()
    torch.save(module.state_dict(), buf)
    return len(buf.getvalue())


w.cases.append({'name': 'fc/size', 'op': 'size', 'args': {'floatBytes': saved_bytes(fc), 'quantizedBytes': saved_bytes(q_fc)},
                'inputs': [], 'outputs': [], 'gradOutputs': [], 'grads': []})

q_mlp = torch.quantization.quantize_dynamic(mlp, {torch.nn.Linear}, dtype=torch.qint8)
x = torch.randn(6, 20)
w.cases.append({'name': 'mlp/forward', 'op': 'model', 'args': {},
                'inputs': [tensor_in(p.detach()) for p in mlp.parameters()] + [tensor_in(x)],
                'outputs': [w.tensor(q_mlp(x)), w.tensor(mlp(x))], 'gradOutputs': [None, None], 'grads': [None] * 5})
w.save()
