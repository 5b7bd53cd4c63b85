"""PyTorch reference for eager-mode static post-training quantization
(tests/quant.static.test.ts): fuse_modules -> prepare -> calibrate ->
convert with QConfig(activation=MinMaxObserver(quint8, reduce_range=True),
weight=PerChannelMinMaxObserver(qint8, per_channel_symmetric)).

Engine: qnnpack, whose int8 conv / linear arithmetic is ONNX QLinearConv's
and Kiln's (the float bias rounded to int32 at scale x_scale * w_scale and
added to the int32 accumulator, a float32 multiplier, round half to even), so
Kiln's static int8 model, its ONNX export in onnxruntime and this reference
compute the same conv integers (onednn adds the bias in float instead).
Model: a small CNN with every piece a quantized ResNet uses: QuantStub,
conv+bn+relu, conv+bn, a residual FloatFunctional.add_relu, max-pool,
adaptive avg-pool, flatten, Linear, DeQuantStub. Recorded: the float state
dict, the calibration and test batches, every observed layer's scale and zero
point after convert, the integer representation of every quantized
activation on the test batch, and the final float output.
"""
import torch
import torch.nn as nn
from torch.ao.quantization import QConfig, MinMaxObserver, PerChannelMinMaxObserver, QuantStub, DeQuantStub

from common import seed, writer_from_argv

torch.backends.quantized.engine = 'qnnpack'
w = writer_from_argv(__file__)
seed(0)

QCONFIG = QConfig(activation=MinMaxObserver.with_args(dtype=torch.quint8, reduce_range=True),
                  weight=PerChannelMinMaxObserver.with_args(dtype=torch.qint8, qscheme=torch.per_channel_symmetric))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant = QuantStub()
        self.conv1 = nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.skip = nn.quantized.FloatFunctional()
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.conv3 = nn.Conv2d(8, 16, 1)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(16, 5)
        self.dequant = DeQuantStub()

    def forward(self, x):
        x = self.quant(x)
        x = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(x))
        x = self.skip.add_relu(y, x)
        x = self.pool(x)
        x = self.conv3(x)
        x = self.avgpool(x)
        x = self.fc(self.flatten(x))
        return self.dequant(x)


def randomize_bn(model):
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.3, 0.3)


def tensor_in(t):
    return {**w.tensor(t.detach()), 'requiresGrad': False}


def record(name, model, fuse_groups, calib, test, observed, activations):
    model.eval()
    state = {k: v for k, v in model.state_dict().items() if not k.endswith('num_batches_tracked')}
    float_out = model(test)
    fused = torch.quantization.fuse_modules(model, fuse_groups)
    fused.qconfig = QCONFIG
    prepared = torch.quantization.prepare(fused)
    for b in calib:
        prepared(b)
    q = torch.quantization.convert(prepared)
    captured = {}
    for path in activations:
        mod = q.get_submodule(path)
        if isinstance(mod, nn.quantized.QFunctional):
            orig = mod.add_relu
            mod.add_relu = lambda a, b, orig=orig, path=path: captured.setdefault(path, orig(a, b))
        else:
            mod.register_forward_hook(lambda m, i, o, path=path: captured.__setitem__(path, o))
    out = q(test)
    qparams = {}
    for path in observed:
        mod = q.get_submodule(path)
        qparams[path] = {'scale': float(mod.scale), 'zeroPoint': int(mod.zero_point)}
    w.cases.append({
        'name': name, 'op': 'static', 'args': {'stateKeys': list(state), 'qparams': qparams, 'activations': activations,
                                               'calibBatches': len(calib)},
        'inputs': [tensor_in(v) for v in state.values()] + [tensor_in(b) for b in calib] + [tensor_in(test)],
        'outputs': [w.tensor(captured[p].int_repr()) for p in activations] + [w.tensor(out), w.tensor(float_out)],
        'gradOutputs': [None] * (len(activations) + 2), 'grads': [None] * (len(state) + len(calib) + 1),
    })


net = Net()
randomize_bn(net)
g = torch.Generator().manual_seed(1)
calib = [torch.randn(4, 3, 16, 16, generator=g) for _ in range(3)]
test = torch.randn(2, 3, 16, 16, generator=g)
record('small_cnn', net, [['conv1', 'bn1', 'relu'], ['conv2', 'bn2']], calib, test,
       observed=['quant', 'conv1', 'conv2', 'skip', 'conv3', 'fc'],
       activations=['quant', 'conv1', 'conv2', 'skip', 'pool', 'conv3', 'avgpool', 'fc'])
w.save()
