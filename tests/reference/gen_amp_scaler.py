"""Reference outputs for Kiln's GradScaler (tests/amp.grad-scaler.parity.test.ts),
in the format of common.py.

PyTorch 1.13's GradScaler is CUDA-only: on a machine without CUDA it
disables itself, asserts its tensors are on CUDA, and its two kernels
(_amp_foreach_non_finite_check_and_unscale_ and _amp_update_scale_) have no
CPU implementation. So this runs PyTorch's own GradScaler source
(torch/cuda/amp/grad_scaler.py: the state machine, when step() skips,
update()'s bookkeeping), loaded with only its `x.is_cuda` asserts and its
CUDA-availability check removed, with the two kernels replaced by Python transcriptions of
their CUDA versions
(aten/src/ATen/native/cuda/AmpKernels.cu): unscale multiplies each float32
gradient by the float32 inverse scale and flags any non-finite value; the
update computes scale * factor in double and stores it as float32.

Each `scaler/*` case trains a Linear(3, 2) with SGD under the scaler for a
number of steps; at the steps listed in `infSteps` the batch holds an inf
(or NaN) so every gradient is non-finite. Outputs: the scale after every
update, whether each optimizer step ran (1/0), the growth tracker after
every update, and the final weight and bias.
"""

import inspect
import re
import types

import numpy as np
import torch
import torch.cuda.amp.grad_scaler as grad_scaler_module
import torch.nn.functional as F

from common import Input, seed, writer_from_argv

seed(0)
w = writer_from_argv(__file__)


def unscale_kernel(grads, found_inf, inv_scale):
    for g in grads:
        if not torch.isfinite(g).all():
            found_inf.fill_(1.0)
        g.mul_(inv_scale)


def update_scale_kernel(scale, growth_tracker, found_inf, growth_factor, backoff_factor, growth_interval):
    s = float(scale.item())
    if found_inf.item():
        scale.fill_(float(np.float32(s * backoff_factor)))
        growth_tracker.fill_(0)
    else:
        successful = int(growth_tracker.item()) + 1
        if successful == growth_interval:
            grown = np.float32(s * growth_factor)
            if np.isfinite(grown):
                scale.fill_(float(grown))
            growth_tracker.fill_(0)
        else:
            growth_tracker.fill_(successful)
    return scale


torch._amp_foreach_non_finite_check_and_unscale_ = unscale_kernel
torch._amp_update_scale_ = update_scale_kernel

_src = inspect.getsource(grad_scaler_module)
_src, n_asserts = re.subn(r"assert (\w+)\.is_cuda or \1\.device\.type == 'xla'", 'pass', _src)
assert n_asserts == 3, n_asserts
_src = _src.replace('from .common import amp_definitely_not_available', 'amp_definitely_not_available = lambda: False')
_mod = types.ModuleType('grad_scaler_on_cpu')
exec(compile(_src, grad_scaler_module.__file__, 'exec'), _mod.__dict__)
GradScaler = _mod.GradScaler


def const(t):
    return Input(t, requires_grad=False)


def scaler_run(x, y, weight, bias, steps, lr, infSteps, nanSteps, initScale, growthFactor, backoffFactor, growthInterval):
    model = torch.nn.Linear(3, 2)
    with torch.no_grad():
        model.weight.copy_(weight)
        model.bias.copy_(bias)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    scaler = GradScaler(init_scale=initScale, growth_factor=growthFactor, backoff_factor=backoffFactor,
                        growth_interval=growthInterval)
    scales, stepped, trackers = [], [], []
    for step in range(steps):
        xb = x[step].clone()
        if step in infSteps:
            xb[0, 0] = float('inf')
        if step in nanSteps:
            xb[0, 0] = float('nan')
        opt.zero_grad()
        loss = F.mse_loss(model(xb), y[step])
        scaler.scale(loss).backward()
        before = model.weight.detach().clone()
        scaler.step(opt)
        stepped.append(0.0 if torch.equal(before, model.weight.detach()) else 1.0)
        scaler.update()
        scales.append(scaler.get_scale())
        trackers.append(float(scaler._get_growth_tracker()))
    return [torch.tensor(scales), torch.tensor(stepped), torch.tensor(trackers),
            model.weight.detach(), model.bias.detach()]


STEPS = 14
for name, kw in [
    ('scaler/defaults_interval_3', dict(infSteps=[2, 3, 9], nanSteps=[6], initScale=2.0 ** 16, growthFactor=2.0,
                                        backoffFactor=0.5, growthInterval=3)),
    ('scaler/odd_factors', dict(infSteps=[1, 8], nanSteps=[], initScale=1000.0, growthFactor=1.7,
                                backoffFactor=0.3, growthInterval=2)),
    ('scaler/default_interval_2000', dict(infSteps=[4], nanSteps=[], initScale=2.0 ** 16, growthFactor=2.0,
                                          backoffFactor=0.5, growthInterval=2000)),
]:
    w.case(name, 'scalerRun', scaler_run,
           [const(torch.randn(STEPS, 4, 3)), const(torch.randn(STEPS, 4, 2)),
            const(torch.randn(2, 3) * 0.5), const(torch.randn(2) * 0.1)],
           steps=STEPS, lr=0.05, **kw)
w.save()
