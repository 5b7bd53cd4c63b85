"""Reference outputs for Kiln's core ops (tests/ops.*.parity.test.ts).

Op names are Kiln's (camelCase); tests/helpers/ops-table.ts maps each to the
Kiln call, OPS below to the PyTorch call. Shapes are chosen to break kernels:
size-1 and empty dims, sizes that are not multiples of 4/8/16, broadcasting
in every position, 0-d tensors, scalar operands and non-contiguous views.
"""

import torch
import torch.nn.functional as F

from common import Input, seed, writer_from_argv

seed(0)
w = writer_from_argv(__file__)


def randn(*shape):
    return torch.randn(shape)


def positive(*shape):
    """Away from 0 and from the domain edges of log/sqrt/rsqrt/pow."""
    return torch.rand(shape) * 2 + 0.25


def nonzero(*shape):
    """Magnitude in [0.5, 1.5), random sign: safe denominators."""
    return (torch.rand(shape) + 0.5) * torch.where(torch.rand(shape) < 0.5, -1.0, 1.0)


def small_ints(*shape, dtype=torch.float32):
    """Values in -2..2, so equality and ties actually occur."""
    return torch.randint(-2, 3, shape).to(dtype)


def index(high, *shape):
    return torch.randint(0, high, shape)


# Non-contiguous operands of a given final shape, as (base, view) pairs.
def transposed(rows, cols):
    return Input(randn(cols, rows), view=[{'op': 'transpose', 'args': [0, 1]}])


def permuted(a, b, c):
    return Input(randn(c, a, b), view=[{'op': 'permute', 'args': [1, 2, 0]}])


def strided(rows, cols):
    return Input(randn(rows, 2 * cols + 1), view=[{'op': 'slice', 'args': [1, 1, 2 * cols + 1, 2]}])


def expanded(rows, cols):
    return Input(randn(1, cols), view=[{'op': 'expand', 'args': [rows, cols]}])


# ---------------------------------------------------------------- unary

UNARY = {
    'neg': torch.neg, 'abs': torch.abs, 'exp': torch.exp, 'log': torch.log,
    'sqrt': torch.sqrt, 'rsqrt': torch.rsqrt, 'sin': torch.sin, 'cos': torch.cos,
    'tanh': torch.tanh, 'sigmoid': torch.sigmoid, 'relu': torch.relu,
    'sign': torch.sign, 'floor': torch.floor, 'ceil': torch.ceil, 'round': torch.round,
}
POSITIVE_DOMAIN = {'log', 'sqrt', 'rsqrt'}
SHAPES = [(), (1,), (7,), (3, 5), (2, 1, 9), (4, 33), (0,), (2, 0, 3)]

for op, fn in UNARY.items():
    make = positive if op in POSITIVE_DOMAIN else (lambda *s: randn(*s) * 2)
    for shape in SHAPES:
        w.case(f'{op}/{list(shape)}', op, fn, [make(*shape)])
    if op not in POSITIVE_DOMAIN:
        for label, inp in [('transposed', transposed(5, 3)), ('permuted', permuted(2, 3, 4)),
                           ('strided', strided(3, 4)), ('expanded', expanded(4, 5))]:
            w.case(f'{op}/{label}', op, fn, [inp])
    else:
        w.case(f'{op}/transposed', op, fn,
               [Input(positive(5, 3), view=[{'op': 'transpose', 'args': [0, 1]}])])

# Edge values where conventions differ: zeros (sign, relu/abs gradients) and
# exact halves (round is half-to-even in PyTorch).
edges = torch.tensor([-2.5, -1.5, -0.5, -0.0, 0.0, 0.5, 1.5, 2.5, 0.49999997, -3.7, 3.2])
for op in ['abs', 'relu', 'sign', 'floor', 'ceil', 'round', 'neg']:
    w.case(f'{op}/edges', op, UNARY[op], [edges])
for op in ['neg', 'abs', 'sign']:
    w.case(f'{op}/int32', op, UNARY[op], [small_ints(3, 4, dtype=torch.int32)])

clamp = lambda x, min=None, max=None: torch.clamp(x, min=min, max=max)
w.case('clamp/both', 'clamp', clamp, [randn(4, 7)], min=-0.5, max=0.75)
w.case('clamp/min', 'clamp', clamp, [randn(13)], min=0.1)
w.case('clamp/max', 'clamp', clamp, [randn(2, 3, 5)], max=-0.2)
w.case('clamp/transposed', 'clamp', clamp, [transposed(3, 6)], min=-1.0, max=1.0)
w.case('clamp/empty', 'clamp', clamp, [randn(0, 4)], min=-1.0, max=1.0)
w.case('clamp/int32', 'clamp', clamp, [small_ints(9, dtype=torch.int32)], min=-1, max=1)

# ---------------------------------------------------------------- binary

ARITH = {
    'add': torch.add, 'sub': torch.sub, 'mul': torch.mul, 'div': torch.div,
    'pow': torch.pow, 'maximum': torch.maximum, 'minimum': torch.minimum,
}
COMPARE = {'eq': torch.eq, 'ne': torch.ne, 'lt': torch.lt, 'le': torch.le, 'gt': torch.gt, 'ge': torch.ge}
BROADCAST = [
    ((3, 4), (3, 4)), ((3, 4), (4,)), ((4,), (3, 4)), ((3, 1), (1, 4)), ((1, 4), (3, 1)),
    ((2, 3, 1, 5), (4, 1)), ((1,), (2, 3)), ((), (2, 3)), ((2, 3), ()), ((5, 1, 7), (1, 6, 1)),
    ((2, 1, 3, 1), (1, 4, 1, 5)), ((17, 9), (17, 1)), ((0, 3), (1, 3)), ((2, 0), (2, 1)),
]


def operands(op, a_shape, b_shape):
    if op == 'div':
        return randn(*a_shape), nonzero(*b_shape)
    if op == 'pow':
        return positive(*a_shape), randn(*b_shape)
    return randn(*a_shape), randn(*b_shape)


for op, fn in ARITH.items():
    for a_shape, b_shape in BROADCAST:
        w.case(f'{op}/{list(a_shape)}x{list(b_shape)}', op, fn, operands(op, a_shape, b_shape))
    a = Input(positive(5, 3), view=[{'op': 'transpose', 'args': [0, 1]}]) if op == 'pow' else transposed(3, 5)
    b = Input(nonzero(3, 11), view=[{'op': 'slice', 'args': [1, 1, 11, 2]}])
    w.case(f'{op}/noncontiguous', op, fn, [a, b])
    w.case(f'{op}/expanded', op, fn, [expanded(4, 5), positive(4, 5) if op == 'pow' else nonzero(4, 5)])

# Scalar operands: `x.op(number)`.
SCALARS = {'add': [2.5, -1], 'sub': [0.75], 'mul': [-3.0, 0.5], 'div': [4.0, -0.3],
           'pow': [2, 3, 0.5, -1.5], 'maximum': [0.1], 'minimum': [-0.2]}
scalar_fns = {
    **{op: (lambda f: lambda x, other: f(x, other))(ARITH[op]) for op in ['add', 'sub', 'mul', 'div', 'pow']},
    # torch.maximum wants a tensor: clamp is its scalar form.
    'maximum': lambda x, other: torch.clamp(x, min=other),
    'minimum': lambda x, other: torch.clamp(x, max=other),
}
for op, values in SCALARS.items():
    for v in values:
        fractional_pow = op == 'pow' and v != int(v)
        x = positive(3, 7) if fractional_pow else randn(3, 7)
        w.case(f'{op}/scalar_{v}', op, scalar_fns[op], [x], other=v)
    w.case(f'{op}/scalar_0d', op, scalar_fns[op], [positive() if op == 'pow' else randn()], other=values[0])

# Integer and mixed dtypes follow torch's promotion (int32 / int32 is true division).
ints = lambda *s: small_ints(*s, dtype=torch.int32)
for op in ['add', 'sub', 'mul', 'maximum', 'minimum']:
    w.case(f'{op}/int32', op, ARITH[op], [ints(3, 4), ints(4)])
w.case('div/int32', 'div', torch.div, [ints(3, 4), torch.randint(1, 4, (3, 4), dtype=torch.int32)])
w.case('add/int32+float32', 'add', torch.add, [ints(2, 3), randn(2, 3)])
w.case('mul/int32*scalar_float', 'mul', lambda x, other: x * other, [ints(5)], other=2.5)
w.case('add/int32+scalar_int', 'add', lambda x, other: x + other, [ints(5)], other=3)

for op, fn in COMPARE.items():
    for a_shape, b_shape in [((3, 4), (3, 4)), ((3, 1), (1, 4)), ((), (5,)), ((0, 2), (2,))]:
        w.case(f'{op}/{list(a_shape)}x{list(b_shape)}', op, fn, [small_ints(*a_shape), small_ints(*b_shape)])
    w.case(f'{op}/scalar', op, lambda x, other, f=fn: f(x, other), [small_ints(4, 5)], other=1)
    w.case(f'{op}/int32', op, fn, [ints(6), ints(6)])
    w.case(f'{op}/noncontiguous', op, fn,
           [Input(small_ints(4, 3), view=[{'op': 'transpose', 'args': [0, 1]}]), small_ints(3, 4)])

w.case('where/broadcast', 'where', torch.where,
       [Input(torch.rand(3, 1) < 0.5), randn(1, 4), randn(3, 4)])
w.case('where/same', 'where', torch.where, [Input(torch.rand(2, 5) < 0.5), randn(2, 5), randn(2, 5)])
w.case('where/0d', 'where', torch.where, [Input(torch.rand(4) < 0.5), randn(), randn(4)])
w.case('where/noncontiguous', 'where', torch.where,
       [Input(torch.rand(3, 4) < 0.5), transposed(3, 4), strided(3, 4)])

# In-place ops mutate a clone, as a user would mutate an intermediate.
INPLACE = {'add_': 'add_', 'sub_': 'sub_', 'mul_': 'mul_', 'div_': 'div_'}
for op in INPLACE:
    fn = lambda x, y, m=op: getattr(x.clone(), m)(y)
    w.case(f'{op}/broadcast', op, fn, [randn(3, 4), nonzero(4)])
    w.case(f'{op}/same', op, fn, [randn(2, 5), nonzero(2, 5)])
    w.case(f'{op}/scalar', op, lambda x, other, m=op: getattr(x.clone(), m)(other), [randn(6)], other=1.5)

# ---------------------------------------------------------------- reductions


def reduce_case(op, fn, shapes_dims, make=randn):
    for shape, dim, keepdim in shapes_dims:
        args = {} if dim is None else {'dim': dim, 'keepdim': keepdim}
        suffix = '' if dim is None else f'_dim{dim}{"_keep" if keepdim else ""}'
        w.case(f'{op}/{list(shape)}{suffix}', op, fn, [make(*shape)], **args)


REDUCE_SHAPES = [((7,), None, False), ((3, 5), None, False), ((), None, False), ((3, 5), 0, False),
                 ((3, 5), 1, True), ((2, 3, 4), -1, False), ((2, 3, 4), 1, True), ((1, 1), 0, False),
                 ((4, 67), 1, False), ((2, 3, 4), [0, 2], False), ((2, 3, 4), [0, 2], True)]


def sum_fn(x, dim=None, keepdim=False):
    return x.sum() if dim is None else x.sum(dim=dim, keepdim=keepdim)


def mean_fn(x, dim=None, keepdim=False):
    return x.mean() if dim is None else x.mean(dim=dim, keepdim=keepdim)


reduce_case('sum', sum_fn, REDUCE_SHAPES)
reduce_case('mean', mean_fn, REDUCE_SHAPES)
w.case('sum/empty_all', 'sum', sum_fn, [randn(0, 3)])
w.case('sum/empty_dim0', 'sum', sum_fn, [randn(0, 3)], dim=0, keepdim=False)
w.case('sum/int32', 'sum', sum_fn, [ints(3, 4)], dim=1, keepdim=False)
w.case('sum/transposed', 'sum', sum_fn, [transposed(5, 6)], dim=1, keepdim=False)
w.case('mean/permuted', 'mean', mean_fn, [permuted(2, 3, 4)], dim=-1, keepdim=True)


def minmax_fn(op):
    def fn(x, dim=None, keepdim=False):
        if dim is None:
            return getattr(x, op)()
        values, indices = getattr(x, op)(dim=dim, keepdim=keepdim)
        return values, indices
    return fn


def arg_fn(op):
    return lambda x, dim=None, keepdim=False: getattr(x, op)() if dim is None else getattr(x, op)(dim=dim, keepdim=keepdim)


MINMAX_SHAPES = [s for s in REDUCE_SHAPES if not isinstance(s[1], list)]
for op in ['max', 'min']:
    reduce_case(op, minmax_fn(op), MINMAX_SHAPES)
    w.case(f'{op}/transposed', op, minmax_fn(op), [transposed(4, 9)], dim=0, keepdim=False)
for op in ['argmax', 'argmin']:
    reduce_case(op, arg_fn(op), MINMAX_SHAPES)
    # Ties: PyTorch returns the first index of the extreme value.
    w.case(f'{op}/ties', op, arg_fn(op), [small_ints(6, 8)], dim=1, keepdim=False)


def var_fn(op):
    def fn(x, dim=None, correction=1, keepdim=False):
        unbiased = correction == 1
        if dim is None:
            return getattr(x, op)(unbiased=unbiased)
        return getattr(x, op)(dim=dim, unbiased=unbiased, keepdim=keepdim)
    return fn


for op in ['var', 'std']:
    w.case(f'{op}/all', op, var_fn(op), [randn(4, 5)])
    w.case(f'{op}/all_biased', op, var_fn(op), [randn(13)], correction=0)
    for shape, dim, corr, keep in [((3, 7), 1, 1, False), ((3, 7), 0, 0, True), ((2, 3, 5), -1, 1, True),
                                   ((2, 3, 5), [0, 2], 1, False), ((5, 17), 1, 0, False)]:
        w.case(f'{op}/{list(shape)}_dim{dim}_c{corr}{"_keep" if keep else ""}', op, var_fn(op),
               [randn(*shape) * 3 + 1], dim=dim, correction=corr, keepdim=keep)

lse = lambda x, dim, keepdim=False: torch.logsumexp(x, dim=dim, keepdim=keepdim)
for shape, dim, keep in [((7,), 0, False), ((3, 5), 1, True), ((2, 3, 4), 0, False), ((4, 33), -1, False)]:
    w.case(f'logsumexp/{list(shape)}_dim{dim}', 'logsumexp', lse, [randn(*shape)], dim=dim, keepdim=keep)
w.case('logsumexp/large', 'logsumexp', lse, [randn(3, 9) * 60], dim=1)

for op, fn in [('softmax', lambda x, dim: torch.softmax(x, dim)), ('logSoftmax', lambda x, dim: torch.log_softmax(x, dim))]:
    for shape, dim in [((7,), 0), ((3, 5), 1), ((3, 5), 0), ((2, 3, 4), 1), ((4, 130), -1), ((1, 1), -1)]:
        w.case(f'{op}/{list(shape)}_dim{dim}', op, fn, [randn(*shape)], dim=dim)
    w.case(f'{op}/large', op, fn, [randn(4, 10) * 50], dim=1)
    w.case(f'{op}/transposed', op, fn, [transposed(5, 6)], dim=1)

# ---------------------------------------------------------------- matmul

for a_shape, b_shape in [((3, 4), (4, 5)), ((1, 7), (7, 1)), ((5,), (5,)), ((5,), (5, 3)), ((3, 5), (5,)),
                         ((2, 3, 4), (4, 5)), ((2, 3, 4), (2, 4, 5)), ((2, 1, 3, 4), (3, 4, 5)),
                         ((17, 33), (33, 9)), ((65, 70), (70, 31)), ((2, 0), (0, 3)), ((0, 4), (4, 2)),
                         ((4,), (2, 4, 3))]:
    w.case(f'matmul/{list(a_shape)}x{list(b_shape)}', 'matmul', torch.matmul, [randn(*a_shape), randn(*b_shape)])
w.case('matmul/transposed_b', 'matmul', torch.matmul, [randn(6, 7), transposed(7, 5)])
w.case('matmul/transposed_a', 'matmul', torch.matmul, [transposed(6, 7), randn(7, 5)])
w.case('matmul/permuted_batch', 'matmul', torch.matmul, [permuted(2, 3, 4), randn(4, 2)])

# ---------------------------------------------------------------- joining, splitting, indexing

cat = lambda *xs, dim: torch.cat(xs, dim)
stack = lambda *xs, dim: torch.stack(xs, dim)
w.case('cat/dim0', 'cat', cat, [randn(2, 3), randn(4, 3)], dim=0)
w.case('cat/dim1_with_empty', 'cat', cat, [randn(2, 3), randn(2, 1), randn(2, 0)], dim=1)
w.case('cat/dim-1_3d', 'cat', cat, [randn(2, 3, 4), randn(2, 3, 1), randn(2, 3, 5)], dim=-1)
w.case('cat/noncontiguous', 'cat', cat, [transposed(3, 4), strided(3, 4)], dim=0)
w.case('cat/single', 'cat', cat, [randn(5)], dim=0)
for dim in [0, 1, -1]:
    w.case(f'stack/dim{dim}', 'stack', stack, [randn(3, 4), randn(3, 4), transposed(3, 4)], dim=dim)

split = lambda x, splitSize, dim: x.split(splitSize, dim)
w.case('split/size2_dim0', 'split', split, [randn(5, 3)], splitSize=2, dim=0)
w.case('split/size3_dim1', 'split', split, [randn(2, 9)], splitSize=3, dim=1)
w.case('split/sections', 'split', split, [randn(6, 4)], splitSize=[1, 3, 2], dim=0)
w.case('split/sections_dim-1', 'split', split, [randn(2, 3, 7)], splitSize=[4, 0, 3], dim=-1)
chunk = lambda x, chunks, dim: x.chunk(chunks, dim)
w.case('chunk/3_dim1', 'chunk', chunk, [randn(2, 7)], chunks=3, dim=1)
w.case('chunk/2_dim0', 'chunk', chunk, [randn(6, 2)], chunks=2, dim=0)
w.case('chunk/4_of_3', 'chunk', chunk, [randn(3)], chunks=4, dim=0)

gather = lambda x, idx, dim: torch.gather(x, dim, idx)
w.case('gather/dim1', 'gather', gather, [randn(3, 5), Input(index(5, 3, 4))], dim=1)
w.case('gather/dim0', 'gather', gather, [randn(4, 3), Input(index(4, 6, 3))], dim=0)
w.case('gather/3d_dim-1', 'gather', gather, [randn(2, 3, 5), Input(index(5, 2, 3, 2))], dim=-1)
w.case('gather/smaller_index', 'gather', gather, [randn(4, 6), Input(index(6, 2, 3))], dim=1)
index_select = lambda x, idx, dim: torch.index_select(x, dim, idx)
# Repeated indices make the backward accumulate.
w.case('indexSelect/dim0_repeats', 'indexSelect', index_select, [randn(5, 3), Input(torch.tensor([4, 0, 4, 2, 4]))], dim=0)
w.case('indexSelect/dim1', 'indexSelect', index_select, [randn(2, 7, 3), Input(index(7, 4))], dim=1)
w.case('indexSelect/empty_index', 'indexSelect', index_select, [randn(4, 3), Input(torch.zeros(0, dtype=torch.long))], dim=0)

pad = lambda x, pad, value=0.0: F.pad(x, pad, value=value)
w.case('pad/last_dim', 'pad', pad, [randn(3, 4)], pad=[1, 2])
w.case('pad/two_dims', 'pad', pad, [randn(2, 3, 4)], pad=[1, 0, 2, 1])
w.case('pad/three_dims_value', 'pad', pad, [randn(2, 3, 4)], pad=[0, 1, 1, 1, 2, 0], value=1.5)
w.case('pad/noncontiguous', 'pad', pad, [transposed(3, 5)], pad=[2, 2, 0, 1], value=-1.0)
w.case('pad/zero_width', 'pad', pad, [randn(2, 2)], pad=[0, 0])

# ---------------------------------------------------------------- views and copies as ops

w.case('clone/transposed', 'clone', torch.clone, [transposed(4, 6)])
w.case('contiguous/permuted', 'contiguous', lambda x: x.contiguous(), [permuted(2, 3, 5)])
w.case('reshape/2x6_to_3x4', 'reshape', lambda x, shape: x.reshape(shape), [randn(2, 6)], shape=[3, 4])
w.case('reshape/infer', 'reshape', lambda x, shape: x.reshape(shape), [randn(2, 3, 4)], shape=[4, -1])
w.case('reshape/of_transposed', 'reshape', lambda x, shape: x.reshape(shape), [transposed(3, 4)], shape=[12])
w.case('reshape/to_0d', 'reshape', lambda x, shape: x.reshape(shape), [randn(1, 1)], shape=[])
w.case('view/3x4_to_2x6', 'view', lambda x, shape: x.view(shape), [randn(3, 4)], shape=[2, 6])
w.case('permute/3d', 'permute', lambda x, dims: x.permute(dims), [randn(2, 3, 4)], dims=[2, 0, 1])
w.case('transpose/3d', 'transpose', lambda x, dim0, dim1: x.transpose(dim0, dim1), [randn(2, 3, 4)], dim0=0, dim1=2)
slice_ = lambda x, dim, start, end, step: x[(slice(None),) * (dim % x.dim()) + (slice(start, end, step),)]
w.case('slice/step1', 'slice', slice_, [randn(5, 4)], dim=0, start=1, end=4, step=1)
w.case('slice/step3_dim1', 'slice', slice_, [randn(3, 11)], dim=1, start=1, end=10, step=3)
w.case('slice/empty', 'slice', slice_, [randn(3, 4)], dim=1, start=2, end=2, step=1)
w.case('narrow/dim-1', 'narrow', lambda x, dim, start, length: x.narrow(dim, start, length), [randn(2, 3, 6)], dim=-1, start=2, length=3)
w.case('expand/row', 'expand', lambda x, shape: x.expand(shape), [randn(1, 4)], shape=[3, 4])
w.case('expand/new_dims', 'expand', lambda x, shape: x.expand(shape), [randn(3, 1)], shape=[2, 3, 5])
w.case('squeeze/dim', 'squeeze', lambda x, dim: x.squeeze(dim), [randn(3, 1, 4)], dim=1)
w.case('squeeze/all', 'squeeze', lambda x: x.squeeze(), [randn(1, 3, 1, 4, 1)])
w.case('unsqueeze/dim-1', 'unsqueeze', lambda x, dim: x.unsqueeze(dim), [randn(3, 4)], dim=-1)
w.case('flatten/all', 'flatten', lambda x: x.flatten(), [randn(2, 3, 4)])
w.case('flatten/middle', 'flatten', lambda x, startDim, endDim: x.flatten(startDim, endDim), [randn(2, 3, 4, 5)], startDim=1, endDim=2)
w.case('T/2d', 'T', lambda x: x.T, [randn(3, 5)])
w.case('mT/3d', 'mT', lambda x: x.transpose(-2, -1), [randn(2, 3, 5)])

# ---------------------------------------------------------------- creation (deterministic ones)

w.case('arange/end', 'arange', lambda end: torch.arange(end), [], end=7)
w.case('arange/float_step', 'arange', lambda start, end, step: torch.arange(start, end, step), [], start=1, end=4, step=0.5)
w.case('arange/negative_step', 'arange', lambda start, end, step: torch.arange(start, end, step), [], start=10, end=0, step=-3)
w.case('eye/square', 'eye', lambda n: torch.eye(n), [], n=4)
w.case('eye/rect', 'eye', lambda n, m: torch.eye(n, m), [], n=2, m=5)
w.case('full/float', 'full', lambda shape, value: torch.full(shape, value), [], shape=[2, 3], value=1.5)
w.case('zeros/empty', 'zeros', lambda shape: torch.zeros(shape), [], shape=[0, 3])
w.case('ones/3d', 'ones', lambda shape: torch.ones(shape), [], shape=[2, 1, 3])

# ---------------------------------------------------------------- error paths

w.error('matmul/inner_mismatch', 'matmul', torch.matmul, [randn(2, 3), randn(4, 5)])
w.error('matmul/batch_mismatch', 'matmul', torch.matmul, [randn(2, 3, 4), randn(3, 4, 5)])
w.error('add/broadcast_mismatch', 'add', torch.add, [randn(3, 4), randn(5)])
w.error('mul/broadcast_mismatch', 'mul', torch.mul, [randn(2, 3), randn(3, 2)])
w.error('where/cond_not_bool', 'where', torch.where, [randn(3), randn(3), randn(3)])
w.error('cat/shape_mismatch', 'cat', cat, [randn(2, 3), randn(2, 4)], dim=0)
w.error('cat/dim_out_of_range', 'cat', cat, [randn(2, 3), randn(2, 3)], dim=2)
w.error('stack/shape_mismatch', 'stack', stack, [randn(2, 3), randn(3, 2)], dim=0)
w.error('reshape/numel_mismatch', 'reshape', lambda x, shape: x.reshape(shape), [randn(2, 3)], shape=[4, 2])
w.error('view/noncontiguous', 'view', lambda x, shape: x.view(shape), [transposed(3, 4)], shape=[12])
w.error('transpose/dim_out_of_range', 'transpose', lambda x, dim0, dim1: x.transpose(dim0, dim1), [randn(2, 3)], dim0=0, dim1=2)
w.error('permute/not_a_permutation', 'permute', lambda x, dims: x.permute(dims), [randn(2, 3)], dims=[0, 0])
w.error('expand/incompatible', 'expand', lambda x, shape: x.expand(shape), [randn(2, 3)], shape=[4, 3])
w.error('sum/dim_out_of_range', 'sum', sum_fn, [randn(2, 3)], dim=2, keepdim=False)
w.error('softmax/dim_out_of_range', 'softmax', lambda x, dim: torch.softmax(x, dim), [randn(2, 3)], dim=-3)
w.error('gather/index_rank', 'gather', gather, [randn(3, 4), Input(index(3, 3))], dim=1)
w.error('gather/float_index', 'gather', gather, [randn(3, 4), Input(randn(3, 2))], dim=1)
w.error('indexSelect/float_index', 'indexSelect', index_select, [randn(3, 4), Input(randn(2))], dim=0)
w.error('indexSelect/index_2d', 'indexSelect', index_select, [randn(3, 4), Input(index(3, 2, 2))], dim=0)
w.error('split/sections_sum', 'split', split, [randn(5, 2)], splitSize=[2, 2], dim=0)

w.save()
