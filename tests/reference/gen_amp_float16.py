"""Reference outputs for Kiln's float16 dtype (tests/amp.float16.parity.test.ts),
in the format of common.py. Kiln's reference format has no float16, so every
value is written as a float32 holding an exact float16 value, and the Kiln
test casts inputs with .to('float16') (exact) and compares float16 outputs
by value.

- `cast/*`: float32 -> float16 (PyTorch's .half(): round to nearest even,
  subnormals, overflow to inf) on values chosen at the rounding edges.
- `ew/*`: elementwise ops PyTorch 1.13 runs in half on the CPU (add, mul,
  div, neg, sum): PyTorch's own float16 results.
- `exact/*`: ops Debian's torch 1.13 cannot run in half on the CPU
  (`addmm_impl_cpu_ not implemented for 'Half'`: matmul, conv2d and its
  backward, exp, tanh, sigmoid, relu, mean): computed in float64 from the
  float16 inputs (and upstream gradient), then rounded to float16 once, which
  is what a float32-accumulating float16 kernel approximates.
"""

import numpy as np
import torch
import torch.nn.functional as F

from common import Input, seed, writer_from_argv

seed(0)
w = writer_from_argv(__file__)


def const(t):
    return Input(t, requires_grad=False)


def h(t):
    """float16 values as float32 (exact)."""
    return t.half().float()


def h64(t):
    return t.double().half().float()


# ---- cast at the rounding edges
eps = 2.0 ** -11
edges = torch.tensor([0.0, -0.0, 1.0, 1 + eps, 1 + 3 * eps, 1 + eps / 2, 2048 + 1, 2048 + 3, 65504.0, 65519.0, 65520.0,
                      1e6, -1e6, 2.0 ** -14, 2.0 ** -24, 2.0 ** -25, 3 * 2.0 ** -26, 2.0 ** -26, 1e-10,
                      float('inf'), float('-inf'), float('nan'), 0.1, -0.3333333, 3.14159265], dtype=torch.float32)
w.case('cast/edges', 'cast', lambda x: h(x), [const(torch.cat([edges, torch.randn(200) * 100, torch.randn(100) * 1e-5]))])

# ---- elementwise in half, PyTorch's own
a, b = h(torch.randn(6, 7)), h(torch.randn(6, 7) + 0.5)
w.case('ew/add', 'add', lambda x, y: (x.half() + y.half()).float(), [const(a), const(b)])
w.case('ew/mul', 'mul', lambda x, y: (x.half() * y.half()).float(), [const(a), const(b)])
w.case('ew/div', 'div', lambda x, y: (x.half() / y.half()).float(), [const(a), const(b)])
w.case('ew/neg', 'neg', lambda x: (-x.half()).float(), [const(a)])
w.case('ew/add_broadcast', 'add', lambda x, y: (x.half() + y.half()).float(), [const(a), const(h(torch.randn(7)))])
w.case('ew/sum', 'sum', lambda x: x.half().sum().float(), [const(h(torch.randn(300)))])

# ---- float64, rounded once
x = h(torch.randn(5, 9))
for op, f in [('exp', torch.exp), ('tanh', torch.tanh), ('sigmoid', torch.sigmoid), ('relu', torch.relu)]:
    w.case(f'exact/{op}', op, lambda t, f=f: h64(f(t.double())), [const(x)])
w.case('exact/mean', 'mean', lambda t: h64(t.double().mean()), [const(h(torch.randn(4, 50)))])
for m, k, n in [(8, 16, 12), (17, 64, 9), (3, 300, 5)]:
    w.case(f'exact/matmul_{m}x{k}x{n}', 'matmul', lambda p, q: h64(p.double() @ q.double()),
           [const(h(torch.randn(m, k))), const(h(torch.randn(k, n)))])


def conv_exact(xx, ww, bb, gout, stride, padding):
    xd = xx.double().requires_grad_()
    wd = ww.double().requires_grad_()
    bd = bb.double().requires_grad_()
    y = F.conv2d(xd, wd, bd, stride=stride, padding=padding)
    y.backward(gout.double())
    return [h64(y.detach()), h64(xd.grad), h64(wd.grad), h64(bd.grad)]


for name, (n, c, hw, o, k, s, p) in {'3x3_pad1': (2, 4, 8, 6, 3, 1, 1), '3x3_stride2': (2, 8, 9, 4, 3, 2, 1),
                                     '1x1': (3, 16, 5, 8, 1, 1, 0)}.items():
    xx = h(torch.randn(n, c, hw, hw))
    ww = h(torch.randn(o, c, k, k) * 0.3)
    bb = h(torch.randn(o) * 0.1)
    oh = (hw + 2 * p - k) // s + 1
    w.case(f'exact/conv2d_{name}', 'conv2d', conv_exact, [const(xx), const(ww), const(bb), const(h(torch.randn(n, o, oh, oh)))],
           stride=s, padding=p)
w.save()
