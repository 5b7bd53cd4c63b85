"""Reference outputs for Kiln's public custom autograd Function
(tests/autograd.function.parity.test.ts), in the format of common.py.

Each case defines a torch.autograd.Function and the Kiln test defines the
same forward and backward with kiln.Function; the writer records PyTorch's
outputs and the input gradients its engine computed through that Function
(so the comparison covers ctx.save_for_backward, needs_input_grad, several
outputs with an unused one, mark_non_differentiable and composition with
built-in ops). Every backward formula is first verified in float64 with
torch.autograd.gradcheck, so the reference gradients are the true ones.
"""

import torch

from common import Input, seed, writer_from_argv

seed(0)
w = writer_from_argv(__file__)


def const(t):
    return Input(t, requires_grad=False)


class Exp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        y = x.exp()
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * y


class ScaledMul(torch.autograd.Function):
    """x * y * alpha with a non-tensor argument; only computes the gradients asked for."""

    @staticmethod
    def forward(ctx, x, y, alpha):
        ctx.save_for_backward(x, y)
        ctx.alpha = alpha
        return x * y * alpha

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        gx = g * y * ctx.alpha if ctx.needs_input_grad[0] else None
        gy = g * x * ctx.alpha if ctx.needs_input_grad[1] else None
        return gx, gy, None


class SinCos(torch.autograd.Function):
    """Two outputs; backward gets zeros for one no gradient reached."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.sin(), x.cos()

    @staticmethod
    def backward(ctx, gs, gc):
        (x,) = ctx.saved_tensors
        return gs * x.cos() - gc * x.sin()


class ReluMask(torch.autograd.Function):
    """relu(x) and its 0/1 mask, the mask marked non-differentiable."""

    @staticmethod
    def forward(ctx, x):
        mask = (x > 0).float()
        ctx.mark_non_differentiable(mask)
        ctx.save_for_backward(mask)
        return x * mask, mask

    @staticmethod
    def backward(ctx, g, _gmask):
        (mask,) = ctx.saved_tensors
        return g * mask


# The formulas are right before they become references.
for fn, args in [
    (Exp.apply, (torch.randn(5, dtype=torch.float64, requires_grad=True),)),
    (lambda x, y: ScaledMul.apply(x, y, 0.75), (torch.randn(4, dtype=torch.float64, requires_grad=True),
                                                 torch.randn(4, dtype=torch.float64, requires_grad=True))),
    (SinCos.apply, (torch.randn(6, dtype=torch.float64, requires_grad=True),)),
    (lambda x: ReluMask.apply(x)[0], (torch.randn(6, dtype=torch.float64, requires_grad=True),)),
]:
    assert torch.autograd.gradcheck(fn, args)

w.case('function/exp', 'exp', Exp.apply, [torch.randn(3, 4)])
w.case('function/scaled_mul_both', 'scaledMul', lambda x, y, alpha: ScaledMul.apply(x, y, alpha),
       [torch.randn(2, 5), torch.randn(2, 5)], alpha=0.75)
w.case('function/scaled_mul_one_needs_grad', 'scaledMul', lambda x, y, alpha: ScaledMul.apply(x, y, alpha),
       [torch.randn(2, 5), const(torch.randn(2, 5))], alpha=-1.5)
w.case('function/sincos_both_outputs', 'sinCos', SinCos.apply, [torch.randn(7)])
w.case('function/sincos_one_output_used', 'sinCosFirst', lambda x: SinCos.apply(x)[0] * 2, [torch.randn(7)])
w.case('function/relu_mask_non_differentiable', 'reluMask', ReluMask.apply, [torch.randn(3, 3)])
w.case('function/composed_with_builtins', 'composed',
       lambda x, wt, b: torch.tanh(Exp.apply(x.matmul(wt) * 0.3) + ScaledMul.apply(b, b, 0.5)),
       [torch.randn(4, 3), torch.randn(3, 5), torch.randn(5)])
w.save()
