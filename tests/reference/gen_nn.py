"""Reference outputs for @kiln/nn (tests/nn.*.test.ts): Module, layers, init,
losses, optimizers with parameter groups, LR schedulers, all from PyTorch.

    /usr/bin/python3 tests/reference/gen_nn.py OUTDIR      (what scripts/setup.mjs does)

Writes OUTDIR/nn.json (+ nn.bin) in common.py's format; the nn-specific
records live under the top-level key "nn" (tensors encoded as common.py's
Tensor records):

    nn.cnn        the small CNN: its print, state-dict keys and initial weights
    nn.training   per optimizer (sgd, adam, adamw): setup, per-step loss and
                  lr, final weights and buffers, optimizer state-dict layout
    nn.schedulers lr sequences of each scheduler type over two groups
    nn.init       default-init bounds and statistics, gains, fans
    nn.losses     loss-module values and input gradients
    nn.clip       clip_grad_norm_ totals and clipped gradients
    nn.errors     load_state_dict's error for missing/unexpected/mismatched keys
    nn.prints     module prints of the other layers
"""

import json
import math
import os
import sys
import warnings

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import seed, writer_from_argv  # noqa: E402

STEPS = 10
BATCH = 4


class SmallCNN(nn.Module):
    """conv-bn-relu-maxpool-conv-bn-relu-adaptive-avgpool-linear; the TS test builds the same class."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1, bias=False)  # followed by BN: a bias would get a zero gradient, pure rounding noise that Adam amplifies
        self.bn2 = nn.BatchNorm2d(16)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.pool(self.relu(self.bn1(self.conv1(x))))
        x = self.relu(self.bn2(self.conv2(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def state_record(w, sd):
    return [{'key': k, 'tensor': w.tensor(v)} for k, v in sd.items()]


def make_optimizer(kind, model):
    # Two groups: the convolutions and batch norms (conv1 frozen but still
    # listed, so the optimizer must skip it), and the head with its own lr.
    body = [p for n, p in model.named_parameters() if not n.startswith('fc.')]
    head = list(model.fc.parameters())
    if kind == 'sgd':
        return torch.optim.SGD([{'params': body, 'weight_decay': 1e-3}, {'params': head, 'lr': 0.1}],
                               lr=0.05, momentum=0.9, nesterov=True, foreach=False)
    if kind == 'adam':
        return torch.optim.Adam([{'params': body, 'weight_decay': 1e-3}, {'params': head, 'lr': 5e-3}],
                                lr=2e-3, foreach=False)
    if kind == 'adamw':
        return torch.optim.AdamW([{'params': body}, {'params': head, 'lr': 5e-3, 'weight_decay': 0.1}],
                                 lr=2e-3, amsgrad=True, foreach=False)
    raise ValueError(kind)


def optimizer_layout(opt):
    sd = opt.state_dict()
    drop = {'foreach', 'differentiable', 'capturable', 'fused'}
    return {
        'state': {str(i): sorted(s.keys()) for i, s in sd['state'].items()},
        'param_groups': [{'keys': sorted(k for k in g if k not in drop), 'params': g['params']} for g in sd['param_groups']],
    }


def training_case(w, kind, initial, data):
    model = SmallCNN()
    model.load_state_dict(initial)
    model.conv1.requires_grad_(False)
    opt = make_optimizer(kind, model)
    warmup = torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.25, total_iters=3)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=STEPS - 3, eta_min=1e-4)
    sched = torch.optim.lr_scheduler.SequentialLR(opt, [warmup, cosine], milestones=[3])
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
    losses, lrs = [], []
    model.train()
    for x, y in data:
        lrs.append([g['lr'] for g in opt.param_groups])
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        eval_out = model(data[0][0])
    return {
        'optimizer': kind,
        'losses': losses,
        'lrs': lrs,
        'lastLr': sched.get_last_lr(),
        'final': state_record(w, model.state_dict()),
        'evalLogits': w.tensor(eval_out),
        'layout': optimizer_layout(opt),
        'momentumBuffers': [w.tensor(opt.state[p]['momentum_buffer']) for p in model.fc.parameters()] if kind == 'sgd' else [],
    }


def scheduler_cases():
    def groups():
        a = torch.zeros(1, requires_grad=True)
        b = torch.zeros(1, requires_grad=True)
        return torch.optim.SGD([{'params': [a]}, {'params': [b], 'lr': 0.01}], lr=0.1)

    makers = {
        'StepLR': lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5),
        'MultiStepLR': lambda o: torch.optim.lr_scheduler.MultiStepLR(o, milestones=[2, 5, 5, 9], gamma=0.3),
        'CosineAnnealingLR': lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=5, eta_min=0.001),
        'LinearLR': lambda o: torch.optim.lr_scheduler.LinearLR(o, start_factor=0.2, end_factor=0.9, total_iters=4),
        'LambdaLR': lambda o: torch.optim.lr_scheduler.LambdaLR(o, [lambda e: 1 / (e + 1), lambda e: 0.9 ** e]),
        'SequentialLR': lambda o: torch.optim.lr_scheduler.SequentialLR(
            o, [torch.optim.lr_scheduler.LinearLR(o, start_factor=0.1, total_iters=3),
                torch.optim.lr_scheduler.StepLR(o, step_size=2, gamma=0.5)], milestones=[4]),
    }
    out = []
    for name, make in makers.items():
        opt = groups()
        s = make(opt)
        seq = [s.get_last_lr()]
        for _ in range(14):
            opt.step()
            s.step()
            seq.append(s.get_last_lr())
        skip = {'verbose', '_get_lr_called_within_step', 'lr_lambdas', '_schedulers'}
        keys = sorted(k for k in s.state_dict() if k not in skip)
        out.append({'name': name, 'lrs': seq, 'initialLr': [g['initial_lr'] for g in opt.param_groups], 'stateKeys': keys})
    return out


def init_cases():
    out = {}
    seed(1)
    conv = nn.Conv2d(64, 128, 3)
    lin = nn.Linear(512, 300)
    for name, layer in (('conv', conv), ('linear', lin)):
        fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(layer.weight)
        wb = 1 / math.sqrt(fan_in)  # kaiming_uniform(a=sqrt(5)) bound
        out[name] = {
            'weightShape': list(layer.weight.shape), 'fanIn': fan_in, 'fanOut': fan_out,
            'weightBound': wb, 'biasBound': 1 / math.sqrt(fan_in),
            'torchWeightStd': layer.weight.std().item(), 'torchWeightMean': layer.weight.mean().item(),
            'torchWeightMaxAbs': layer.weight.abs().max().item(),
        }
    t = torch.empty(256, 128, 3, 3)
    out['kaimingNormalFanOutRelu'] = {'shape': list(t.shape), 'std': nn.init.calculate_gain('relu') / math.sqrt(256 * 9),
                                      'torchStd': nn.init.kaiming_normal_(t, mode='fan_out', nonlinearity='relu').std().item()}
    t = torch.empty(400, 300)
    out['xavierUniform'] = {'shape': list(t.shape), 'gain': 2.0, 'bound': 2.0 * math.sqrt(6.0 / 700),
                            'torchMaxAbs': nn.init.xavier_uniform_(t, gain=2.0).abs().max().item()}
    out['xavierNormal'] = {'shape': list(t.shape), 'gain': 0.5, 'std': 0.5 * math.sqrt(2.0 / 700),
                           'torchStd': nn.init.xavier_normal_(t, gain=0.5).std().item()}
    out['kaimingUniformLeaky'] = {'shape': [300, 200], 'a': 0.2,
                                  'bound': nn.init.calculate_gain('leaky_relu', 0.2) * math.sqrt(3.0 / 200)}
    gains = [['linear', None], ['conv2d', None], ['sigmoid', None], ['tanh', None], ['relu', None],
             ['leaky_relu', None], ['leaky_relu', 0.2], ['selu', None]]
    out['gains'] = [{'nonlinearity': n, 'param': p, 'gain': nn.init.calculate_gain(n, p)} for n, p in gains]
    out['fans'] = [{'shape': s, 'fans': list(nn.init._calculate_fan_in_and_fan_out(torch.empty(s)))}
                   for s in ([10, 20], [8, 3, 5, 5], [4, 6, 2], [7, 1, 1, 1])]
    return out


def loss_cases(w):
    seed(2)
    logits = torch.randn(6, 5)
    target = torch.tensor([0, 4, 2, -100, 1, 3])
    weight = torch.rand(5) + 0.5
    mse_in, mse_target = torch.randn(3, 4), torch.randn(3, 4)
    configs = [
        ('CrossEntropyLoss', {}, {}),
        ('CrossEntropyLoss', {'label_smoothing': 0.2, 'weight': weight}, {'labelSmoothing': 0.2, 'weight': True}),
        ('CrossEntropyLoss', {'reduction': 'sum', 'ignore_index': 2}, {'reduction': 'sum', 'ignoreIndex': 2}),
        ('NLLLoss', {'weight': weight}, {'weight': True}),
        ('MSELoss', {}, {}),
        ('MSELoss', {'reduction': 'none'}, {'reduction': 'none'}),
    ]
    out = []
    for name, kwargs, kiln_opts in configs:
        if name == 'MSELoss':
            x, t = mse_in.clone().requires_grad_(), mse_target
        else:
            x = (logits.log_softmax(1) if name == 'NLLLoss' else logits).detach().clone().requires_grad_()
            t = target.clamp(min=2) if kwargs.get('ignore_index') == 2 else target
        value = getattr(nn, name)(**kwargs)(x, t)
        value.backward(torch.ones_like(value))
        out.append({'name': name, 'options': kiln_opts, 'input': w.tensor(x), 'target': w.tensor(t),
                    'value': w.tensor(value), 'grad': w.tensor(x.grad), 'str': str(getattr(nn, name)(**kwargs))})
    return {'weight': w.tensor(weight), 'cases': out}


def clip_cases(w):
    seed(3)
    grads = [torch.randn(4, 3), torch.randn(5), torch.randn(2, 2, 2)]
    out = []
    for norm_type, max_norm in ((2.0, 1.0), (1.0, 2.5), (math.inf, 0.5), (3.0, 100.0)):
        ps = [torch.zeros_like(g, requires_grad=True) for g in grads]
        for p, g in zip(ps, grads):
            p.grad = g.clone()
        total = torch.nn.utils.clip_grad_norm_(ps, max_norm, norm_type)
        out.append({'normType': 'inf' if norm_type == math.inf else norm_type, 'maxNorm': max_norm,
                    'total': total.item(), 'clipped': [w.tensor(p.grad) for p in ps]})
    return {'grads': [w.tensor(g) for g in grads], 'cases': out}


def error_case():
    model = SmallCNN()
    sd = model.state_dict()
    del sd['bn1.running_var']
    del sd['fc.bias']
    sd['fc.extra'] = torch.zeros(1)
    sd['head.weight'] = torch.zeros(1)
    sd['conv2.weight'] = torch.zeros(16, 8, 5, 5)
    try:
        model.load_state_dict(sd)
    except RuntimeError as e:
        message = str(e)
    else:
        raise AssertionError('load_state_dict accepted a broken state dict')
    result = SmallCNN().load_state_dict({k: v for k, v in sd.items() if k != 'conv2.weight'}, strict=False)
    # The strict load's lists: the same, less the key left out of the non-strict load.
    return {'message': message, 'missing': [k for k in result.missing_keys if k != 'conv2.weight'],
            'unexpected': result.unexpected_keys,
            'nonStrict': {'missing': result.missing_keys, 'unexpected': result.unexpected_keys}}


def prints():
    seq = nn.Sequential(
        nn.Conv2d(3, 4, 3, stride=2, padding=1, dilation=2, groups=1),
        nn.Conv2d(4, 4, (1, 3), padding='same', groups=2, bias=False),
        nn.BatchNorm2d(4, eps=1e-3, momentum=None, affine=False, track_running_stats=False),
        nn.ReLU(),
        nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
        nn.AvgPool2d(2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(0.25),
        nn.Identity(),
        nn.Linear(4, 2, bias=False),
    )
    lst = nn.ModuleList([nn.Linear(2, 2), nn.Sequential(nn.ReLU(), nn.Identity())])
    dct = nn.ModuleDict({'act': nn.ReLU(inplace=True), 'pool': nn.AvgPool2d(3, stride=1, padding=1)})
    return {'sequential': str(seq), 'moduleList': str(lst), 'moduleDict': str(dct),
            'sequentialKeys': list(seq.state_dict().keys())}


def main():
    w = writer_from_argv(__file__)
    # SequentialLR steps its later schedulers with an explicit epoch, which warns.
    warnings.filterwarnings('ignore', category=UserWarning, module='torch.optim.lr_scheduler')
    seed(0)
    model = SmallCNN()
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    data = [(torch.randn(BATCH, 3, 16, 16), torch.randint(0, 10, (BATCH,))) for _ in range(STEPS)]
    doc = {
        'cnn': {
            'str': str(model),
            'keys': list(initial.keys()),
            'parameterNames': [n for n, _ in model.named_parameters()],
            'bufferNames': [n for n, _ in model.named_buffers()],
            'initial': state_record(w, initial),
            'data': [{'x': w.tensor(x), 'y': w.tensor(y)} for x, y in data],
        },
        'training': [training_case(w, kind, initial, data) for kind in ('sgd', 'adam', 'adamw')],
        'schedulers': scheduler_cases(),
        'init': init_cases(),
        'losses': loss_cases(w),
        'clip': clip_cases(w),
        'errors': error_case(),
        'prints': prints(),
    }
    w.nn = doc
    save(w)


def save(w):
    """Writer.save plus the "nn" record."""
    doc = {'format': 1, 'generator': w.generator, 'torch': torch.__version__, 'cases': w.cases, 'errors': w.errors, 'nn': w.nn}
    with open(os.path.join(w.outdir, f'{w.name}.json'), 'w') as f:
        json.dump(doc, f, separators=(',', ':'), allow_nan=False)
    if w.bin:
        with open(os.path.join(w.outdir, f'{w.name}.bin'), 'wb') as f:
            f.write(w.bin)
    print(f'{w.generator}: small CNN trained with {len(w.nn["training"])} optimizers, '
          f'{len(w.nn["schedulers"])} schedulers, {len(w.nn["losses"]["cases"])} loss cases')


if __name__ == '__main__':
    main()
