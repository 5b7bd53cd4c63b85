"""Reference outputs for Kiln's activation checkpointing
(tests/autograd.checkpoint.parity.test.ts), in the format of common.py.

- `block/*`: a residual block (conv-bn-relu-conv-bn + shortcut, relu) in
  training mode, one forward and backward of sum(y * upstream). Outputs: y,
  the gradient of x and of every parameter, then BatchNorm's running mean and
  variance after the step. The values are PyTorch's plain (un-checkpointed)
  run; the generator asserts that torch.utils.checkpoint (use_reentrant=False)
  gives the same output and gradients, and that its running statistics are
  NOT the plain run's: PyTorch 1.13 updates them a second time while
  recomputing (Kiln must give the plain run's statistics). With
  `inputRequiresGrad` false no input needs a gradient and the parameters
  still get theirs (the non-reentrant rule).
- `sequential/*`: torch.utils.checkpoint.checkpoint_sequential over
  Linear/Tanh modules; outputs y and every parameter's gradient.
"""

import torch
import torch.nn as nn
from torch.utils.checkpoint import checkpoint, checkpoint_sequential

from common import Input, seed, writer_from_argv

seed(0)
w = writer_from_argv(__file__)


def const(t):
    return Input(t, requires_grad=False)


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + x)


BLOCK_PARAMS = ['conv1.weight', 'bn1.weight', 'bn1.bias', 'conv2.weight', 'bn2.weight', 'bn2.bias']


def make_block(params):
    b = Block(params[0].shape[0])
    sd = b.state_dict()
    for name, p in zip(BLOCK_PARAMS, params):
        sd[name] = p.clone()
    b.load_state_dict(sd)
    return b.train()


def block_run(x, gout, params, input_requires_grad, use_checkpoint):
    b = make_block(params)
    x = x.clone().requires_grad_(input_requires_grad)
    y = checkpoint(b, x, use_reentrant=False) if use_checkpoint else b(x)
    (y * gout).sum().backward()
    gx = x.grad if input_requires_grad else torch.zeros_like(x)
    stats = [b.bn1.running_mean, b.bn1.running_var, b.bn2.running_mean, b.bn2.running_var]
    return [y.detach(), gx] + [p.grad for p in b.parameters()] + [s.clone() for s in stats]


def block_step(x, gout, *params, inputRequiresGrad):
    plain = block_run(x, gout, params, inputRequiresGrad, False)
    ckpt = block_run(x, gout, params, inputRequiresGrad, True)
    for a, b in zip(plain[:8], ckpt[:8]):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6), 'checkpoint changed an output or a gradient'
    # PyTorch's bug, which Kiln does not share: the recomputation moves the running stats again.
    assert not torch.allclose(plain[8], ckpt[8]), 'PyTorch no longer double-updates running stats in checkpoint'
    return plain


C = 4
for name, rg in [('input_requires_grad', True), ('no_input_requires_grad', False)]:
    x = torch.randn(2, C, 5, 5)
    params = [torch.randn(C, C, 3, 3) * 0.3, 1 + 0.1 * torch.randn(C), 0.1 * torch.randn(C),
              torch.randn(C, C, 3, 3) * 0.3, 1 + 0.1 * torch.randn(C), 0.1 * torch.randn(C)]
    w.case(f'block/{name}', 'blockStep', block_step,
           [const(x), const(torch.randn(2, C, 5, 5))] + [const(p) for p in params], inputRequiresGrad=rg)


def seq_step(x, gout, *params, segments):
    mods = []
    for i in range(0, len(params), 2):
        lin = nn.Linear(params[i].shape[1], params[i].shape[0])
        with torch.no_grad():
            lin.weight.copy_(params[i])
            lin.bias.copy_(params[i + 1])
        mods += [lin, nn.Tanh()]
    model = nn.Sequential(*mods)
    xr = x.clone().requires_grad_(True)
    # torch 1.13's checkpoint_sequential is reentrant only; the gradients are the same.
    y = checkpoint_sequential(model, segments, xr)
    (y * gout).sum().backward()
    return [y.detach(), xr.grad] + [p.grad for p in model.parameters()]


dims = [6, 8, 8, 5, 3]
params = []
for i in range(len(dims) - 1):
    params += [torch.randn(dims[i + 1], dims[i]) * 0.4, torch.randn(dims[i + 1]) * 0.1]
for segments in [2, 3]:
    w.case(f'sequential/4_linear_tanh_{segments}_segments', 'seqStep', seq_step,
           [const(torch.randn(4, dims[0])), const(torch.randn(4, dims[-1]))] + [const(p) for p in params],
           segments=segments)
w.save()
