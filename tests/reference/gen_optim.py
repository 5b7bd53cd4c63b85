"""Reference outputs for the fused optimizer updates (tests/optim.fused.parity.test.ts):
torch.optim.SGD and torch.optim.Adam / AdamW stepped three times on one
parameter, for every combination of their flags, in common.py's format.

    /usr/bin/python3 tests/reference/gen_optim.py OUTDIR      (what scripts/setup.mjs does)

Each case is one optimizer run over two parameters in one group: a
[3, 37] tensor (111 elements: not a multiple of 4, so the WebGPU kernel
updates one element per thread) and a [12, 97] one (1164 elements: four
per thread, 291 threads, two workgroups with a ragged tail). Inputs: per
parameter, its initial value and its three gradients (a few entries exactly
0, so Adam's denominator is eps there). The learning rate changes every
step (`lrs`), as a scheduler would change it. Outputs, after each step, per
parameter in order: the parameter, then its state tensors (SGD:
momentum_buffer when momentum is set; Adam: exp_avg, exp_avg_sq, and
max_exp_avg_sq under amsgrad).

    sgd/*   momentum 0 or 0.9; dampening 0 or 0.3 (with momentum);
            nesterov (momentum 0.9, dampening 0); weight_decay 0 or 1e-2;
            maximize
    adam/*  Adam or AdamW; weight_decay 0 or 1e-2 (AdamW: 0 or 0.1);
            amsgrad; maximize
"""

import torch

from common import Input, seed, writer_from_argv

seed(0)
w = writer_from_argv(__file__)

SHAPES = [(3, 37), (12, 97)]
LRS = [0.1, 0.05, 0.02]
ADAM_LRS = [1e-2, 5e-3, 2e-3]


def data():
    inputs = []
    for shape in SHAPES:
        inputs.append(torch.randn(shape))
        for _ in LRS:
            g = torch.randn(shape)
            g.view(-1)[::37] = 0.0
            inputs.append(g)
    return [Input(t, requires_grad=False) for t in inputs]


def run(make, state_keys, *tensors, lrs):
    per = 1 + len(lrs)
    params = [torch.nn.Parameter(tensors[i * per].clone()) for i in range(len(SHAPES))]
    opt = make(params)
    outs = []
    for s, lr in enumerate(lrs):
        opt.param_groups[0]['lr'] = lr
        for i, param in enumerate(params):
            param.grad = tensors[i * per + 1 + s].clone()
        opt.step()
        for param in params:
            outs.append(param.detach().clone())
            outs += [opt.state[param][k].clone() for k in state_keys]
    return outs


def sgd_case(momentum, dampening, nesterov, weight_decay, maximize):
    name = f'sgd/m{momentum}_d{dampening}{"_nesterov" if nesterov else ""}_wd{weight_decay}{"_maximize" if maximize else ""}'
    opts = dict(momentum=momentum, dampening=dampening, nesterov=nesterov, weight_decay=weight_decay, maximize=maximize)
    keys = ['momentum_buffer'] if momentum else []
    w.case(name, 'sgd', lambda *t, **a: run(lambda ps: torch.optim.SGD(ps, lr=LRS[0], **opts), keys, *t, lrs=LRS),
           data(), lrs=LRS, stateKeys=keys, **opts)


def adam_case(decoupled, weight_decay, amsgrad, maximize):
    kind = 'adamw' if decoupled else 'adam'
    name = f'adam/{kind}_wd{weight_decay}{"_amsgrad" if amsgrad else ""}{"_maximize" if maximize else ""}'
    cls = torch.optim.AdamW if decoupled else torch.optim.Adam
    opts = dict(betas=(0.9, 0.999), eps=1e-8, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize)
    keys = ['exp_avg', 'exp_avg_sq'] + (['max_exp_avg_sq'] if amsgrad else [])
    w.case(name, 'adam', lambda *t, **a: run(lambda ps: cls(ps, lr=ADAM_LRS[0], **opts), keys, *t, lrs=ADAM_LRS),
           data(), lrs=ADAM_LRS, stateKeys=keys, decoupled=decoupled, **{**opts, 'betas': list(opts['betas'])})


for weight_decay in (0.0, 1e-2):
    for maximize in (False, True):
        sgd_case(0.0, 0.0, False, weight_decay, maximize)
        for dampening, nesterov in ((0.0, False), (0.0, True), (0.3, False)):
            sgd_case(0.9, dampening, nesterov, weight_decay, maximize)

for decoupled in (False, True):
    for weight_decay in ((0.0, 1e-2) if not decoupled else (0.0, 0.1)):
        for amsgrad in (False, True):
            for maximize in (False, True):
                adam_case(decoupled, weight_decay, amsgrad, maximize)

w.save()
