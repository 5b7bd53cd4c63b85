"""Reference outputs for NaN and +-Inf inputs (tests/ops.nonfinite.parity.test.ts).

PyTorch's rules for non-finite values, recorded so both Kiln backends are
held to them: NaN propagates through arithmetic, max/min (elementwise and
reductions, whose index is the NaN's), relu, softmax, sums, pooling and
conv; comparisons with NaN are false (ne true); Inf - Inf and 0 * Inf are
NaN; exp(-Inf) = 0, log(0) = -Inf, softmax over a row holding +Inf is NaN,
over -Inf entries 0. Op names and arguments are those of gen_ops.py and
gen_cnn.py, so tests/parity/ops-table.ts and cnn-table.ts run them.

Gradients are recorded where PyTorch's are defined by a simple rule (relu's
is 0 at NaN, abs/neg/add/mul pass NaN through); elsewhere the inputs do not
require grad and only values are checked.
"""

import torch
import torch.nn.functional as F

from common import Input, seed, writer_from_argv

seed(0)
w = writer_from_argv(__file__)

NAN, INF = float('nan'), float('inf')


def t(*values):
    return torch.tensor(values, dtype=torch.float32)


def const(x):
    return Input(x, requires_grad=False)


# One vector with every special value and ordinary neighbours.
SPECIAL = t(NAN, INF, -INF, 0.0, -0.0, 1.5, -2.5, 3e38, -1e-30, 7.0)

# ---- unary: grads only where PyTorch's backward is a plain rule on the value
for op, fn, grad in [
    ('neg', torch.neg, True), ('abs', torch.abs, False), ('relu', torch.relu, True),
    ('exp', torch.exp, False), ('log', torch.log, False), ('sqrt', torch.sqrt, False),
    ('tanh', torch.tanh, False), ('sigmoid', torch.sigmoid, False), ('sign', torch.sign, False),
    ('floor', torch.floor, False), ('ceil', torch.ceil, False), ('round', torch.round, False),
]:
    w.case(f'{op}/special', op, fn, [SPECIAL if grad else const(SPECIAL)])
w.case('clamp/special', 'clamp', lambda x, min, max: torch.clamp(x, min, max), [const(SPECIAL)], min=-1.0, max=1.0)

# ---- binary: every pairing of special values (a 10x10 outer grid by broadcasting)
A = SPECIAL.reshape(10, 1)
B = SPECIAL.reshape(1, 10)
for op, fn, grad in [('add', torch.add, True), ('sub', torch.sub, False), ('mul', torch.mul, True),
                     ('div', torch.div, False), ('maximum', torch.maximum, False), ('minimum', torch.minimum, False)]:
    w.case(f'{op}/special_grid', op, fn, [A, B] if grad else [const(A), const(B)])
w.case('pow/special_grid', 'pow', torch.pow, [const(A.abs()), const(B)])
for op in ['eq', 'ne', 'lt', 'le', 'gt', 'ge']:
    w.case(f'{op}/special_grid', op, getattr(torch, op), [const(A), const(B)])
# (Scalar operands travel as JSON args, which cannot hold NaN/Inf; the grids cover those values as tensors.)
w.case('mul/scalar_zero', 'mul', lambda x, other: x * other, [const(SPECIAL)], other=0.0)

# ---- reductions: rows without, with one NaN, with +-Inf, with +Inf and -Inf
ROWS = torch.stack([
    t(1.0, 2.0, 3.0, -4.0, 0.5),
    t(1.0, NAN, 3.0, -4.0, 0.5),
    t(1.0, INF, 3.0, -4.0, 0.5),
    t(1.0, -INF, 3.0, -4.0, 0.5),
    t(INF, -INF, 3.0, -4.0, 0.5),
    t(-INF, -INF, -INF, -INF, -INF),
    t(NAN, NAN, 2.0, INF, -INF),
])


def minmax_fn(op):
    def fn(x, dim=None, keepdim=False):
        if dim is None:
            return getattr(x, op)()
        values, indices = getattr(x, op)(dim=dim, keepdim=keepdim)
        return values, indices
    return fn


for op, fn in [('sum', lambda x, dim=None, keepdim=False: x.sum() if dim is None else x.sum(dim=dim, keepdim=keepdim)),
               ('mean', lambda x, dim=None, keepdim=False: x.mean() if dim is None else x.mean(dim=dim, keepdim=keepdim))]:
    w.case(f'{op}/special_rows', op, fn, [const(ROWS)], dim=1, keepdim=False)
    w.case(f'{op}/special_cols', op, fn, [const(ROWS)], dim=0, keepdim=True)
    w.case(f'{op}/special_all', op, fn, [const(ROWS)])
for op in ['max', 'min']:
    w.case(f'{op}/special_rows', op, minmax_fn(op), [const(ROWS)], dim=1, keepdim=False)
    w.case(f'{op}/special_cols', op, minmax_fn(op), [const(ROWS)], dim=0, keepdim=False)
    w.case(f'{op}/special_all', op, minmax_fn(op), [const(ROWS)])
for op in ['argmax', 'argmin']:
    w.case(f'{op}/special_rows', op, lambda x, dim, keepdim=False, o=op: getattr(x, o)(dim=dim, keepdim=keepdim),
           [const(ROWS)], dim=1, keepdim=False)
w.case('logsumexp/special_rows', 'logsumexp', lambda x, dim, keepdim=False: torch.logsumexp(x, dim=dim, keepdim=keepdim),
       [const(ROWS)], dim=1)
w.case('softmax/special_rows', 'softmax', lambda x, dim: torch.softmax(x, dim), [const(ROWS)], dim=1)
w.case('logSoftmax/special_rows', 'logSoftmax', lambda x, dim: torch.log_softmax(x, dim), [const(ROWS)], dim=1)

# ---- pooling and conv: one NaN, one +Inf, one -Inf planted in a 6x6 map
plane = torch.randn(1, 2, 6, 6)
plane[0, 0, 1, 1] = NAN
plane[0, 0, 4, 3] = INF
plane[0, 1, 2, 4] = -INF
plane[0, 1, 5, 0] = INF


def max_pool(x, kernel, stride=None, padding=0, dilation=1, ceilMode=False):
    return F.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode=ceilMode, return_indices=True)


def avg_pool(x, kernel, stride=None, padding=0, ceilMode=False, countIncludePad=True, divisorOverride=None):
    return F.avg_pool2d(x, kernel, stride, padding, ceil_mode=ceilMode,
                        count_include_pad=countIncludePad, divisor_override=divisorOverride)


w.case('maxPool2d/special_2x2', 'maxPool2d', max_pool, [const(plane)], kernel=2)
w.case('maxPool2d/special_3x3_s2_p1', 'maxPool2d', max_pool, [const(plane)], kernel=3, stride=2, padding=1)
w.case('avgPool2d/special_2x2', 'avgPool2d', avg_pool, [const(plane)], kernel=2)
w.case('avgPool2d/special_3x3_s1_p1', 'avgPool2d', avg_pool, [const(plane)], kernel=3, stride=1, padding=1)
w.case('adaptiveAvgPool2d/special_to_2x3', 'adaptiveAvgPool2d', lambda x, outputSize: F.adaptive_avg_pool2d(x, outputSize),
       [const(plane)], outputSize=[2, 3])


def conv(x, wt, b=None, stride=1, padding=0, dilation=1, groups=1):
    return F.conv2d(x, wt, b, stride=stride, padding=padding, dilation=dilation, groups=groups)


weight = torch.randn(3, 2, 3, 3) / 4
w.case('conv2d/special_input', 'conv2d', conv, [const(plane), const(weight), const(torch.randn(3) * 0.1)], padding=1)
inf_weight = weight.clone()
inf_weight[1, 0, 1, 1] = INF
w.case('conv2d/special_weight', 'conv2d', conv, [const(torch.randn(1, 2, 5, 5)), const(inf_weight)], stride=2)

w.save()
