"""PyTorch reference for static post-training quantization of ResNet18
(tests/quant.resnet.test.ts): torchvision.models.quantization.resnet18(
quantize=False) with seeded weights (torch.manual_seed(0), torchvision's
init, BatchNorm statistics and affines drawn so folding matters), eval,
fuse_model(), QConfig(MinMaxObserver(quint8, reduce_range=True),
PerChannelMinMaxObserver(qint8, per_channel_symmetric)), prepare, two
calibration batches, convert. Engine qnnpack: its int8 conv / linear arithmetic (int32 bias at
x_scale * w_scale, float32 multiplier, round half to even) is ONNX
QLinearConv's, which Kiln implements so that its ONNX export runs
bit-identically in onnxruntime (onednn adds the bias in float instead).

Recorded: the float state dict, calibration and test batches (32x32
images, so the int8 model runs quickly on lavapipe), every observed
layer's scale / zero point, the integers of the quantized input, stem,
max-pool, every block's output, avg-pool and fc, the int8 model's logits
and the float model's logits. Printed: the fp32 vs int8 logit error.
"""
import torch
import torch.nn as nn
import torchvision
from torch.ao.quantization import QConfig, MinMaxObserver, PerChannelMinMaxObserver

from common import seed, writer_from_argv

torch.backends.quantized.engine = 'qnnpack'
w = writer_from_argv(__file__)
seed(0)

QCONFIG = QConfig(activation=MinMaxObserver.with_args(dtype=torch.quint8, reduce_range=True),
                  weight=PerChannelMinMaxObserver.with_args(dtype=torch.qint8, qscheme=torch.per_channel_symmetric))

model = torchvision.models.quantization.resnet18(quantize=False)
for m in model.modules():
    if isinstance(m, nn.BatchNorm2d):
        m.running_mean.uniform_(-0.2, 0.2)
        m.running_var.uniform_(0.5, 1.5)
        m.weight.data.uniform_(0.3, 0.9)
        m.bias.data.uniform_(-0.1, 0.1)
model.eval()
state = {k: v for k, v in model.state_dict().items() if not k.endswith('num_batches_tracked')}

g = torch.Generator().manual_seed(2)
calib = [torch.randn(2, 3, 32, 32, generator=g) for _ in range(2)]
test = torch.randn(4, 3, 32, 32, generator=g)
float_out = model(test)

model.fuse_model()
model.qconfig = QCONFIG
prepared = torch.quantization.prepare(model)
for b in calib:
    prepared(b)
q = torch.quantization.convert(prepared)

blocks = [f'layer{i}.{j}' for i in range(1, 5) for j in range(2)]
activations = ['quant', 'conv1', 'maxpool', 'layer1.0.conv1', 'layer1.0.conv2', *blocks, 'avgpool', 'fc']
observed = ['quant', 'conv1', *[f'{b}.{n}' for b in blocks for n in ['conv1', 'conv2', 'add_relu']],
            *[f'layer{i}.0.downsample.0' for i in range(2, 5)], 'fc']
captured = {}
for path in activations:
    q.get_submodule(path).register_forward_hook(lambda m, i, o, path=path: captured.__setitem__(path, o))
out = q(test)
qparams = {p: {'scale': float(q.get_submodule(p).scale), 'zeroPoint': int(q.get_submodule(p).zero_point)} for p in observed}
err = (out - float_out).abs()
print(f'gen_quant_resnet.py: fp32 vs int8 logits: max |diff| {err.max():.4f}, mean {err.mean():.4f}, '
      f'logit range {float_out.min():.3f}..{float_out.max():.3f}, top-1 agree {(out.argmax(1) == float_out.argmax(1)).float().mean():.2f}')

w.cases.append({
    'name': 'resnet18', 'op': 'static',
    'args': {'stateKeys': list(state), 'qparams': qparams, 'activations': activations, 'calibBatches': len(calib)},
    'inputs': [{**w.tensor(v), 'requiresGrad': False} for v in state.values()]
              + [{**w.tensor(b), 'requiresGrad': False} for b in calib] + [{**w.tensor(test), 'requiresGrad': False}],
    'outputs': [w.tensor(captured[p].int_repr()) for p in activations] + [w.tensor(out), w.tensor(float_out.detach())],
    'gradOutputs': [None] * (len(activations) + 2), 'grads': [None] * (len(state) + len(calib) + 1),
})
w.save()
