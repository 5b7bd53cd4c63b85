"""Reference outputs for Kiln's autograd tests (tests/autograd.*.test.ts and
packages/core/test/autograd.*.test.ts), in the format of common.py.

Three kinds of case, each with an op name the Kiln side maps in
tests/parity/autograd-table.ts:

- `mlpSgd`: a 2-layer MLP with softmax cross-entropy built from core ops,
  trained 10 plain SGD steps; outputs the loss at every step and the final
  weights. No gradients are recorded by the writer (the case does its own).
- `grad/<behaviour>`: autograd behaviours (accumulation across backward
  calls, retain_graph, retain_grad, hooks, explicit gradients, detach); each
  runs its own backward passes and outputs the resulting .grad tensors.
- `chain/<name>`: a short composition (views, broadcasting, joins, indexing,
  reductions, matmul); the writer checks d(sum out * upstream)/d inputs.
"""

import torch
import torch.nn.functional as F

from common import Input, seed, writer_from_argv

seed(0)
w = writer_from_argv(__file__)


def randn(*shape):
    return torch.randn(shape)


def const(t):
    return Input(t, requires_grad=False)


def leaf(t):
    return t.detach().clone().requires_grad_(True)


# ---------------------------------------------------------------- MLP + SGD

MLP = dict(batch=16, features=6, hidden=10, classes=4, steps=10, lr=0.5)


def mlp_sgd(x, y, w1, b1, w2, b2, steps, lr):
    params = [leaf(p) for p in (w1, b1, w2, b2)]
    w1, b1, w2, b2 = params
    losses = []
    for _ in range(steps):
        h = torch.relu(x.matmul(w1).add(b1))
        logits = h.matmul(w2).add(b2)
        logp = torch.log_softmax(logits, 1)
        loss = logp.gather(1, y.unsqueeze(1)).mean().neg()
        loss.backward()
        with torch.no_grad():
            for p in params:
                p.sub_(p.grad.mul(lr))
                p.grad.zero_()
        losses.append(loss.detach())
    return [torch.stack(losses)] + [p.detach() for p in params]


m = MLP
x_data = randn(m['batch'], m['features'])
y_data = torch.randint(0, m['classes'], (m['batch'],))
w.case('mlpSgd/2layer_10steps', 'mlpSgd', mlp_sgd,
       [const(x_data), Input(y_data),
        const(randn(m['features'], m['hidden']) * 0.5), const(randn(m['hidden']) * 0.1),
        const(randn(m['hidden'], m['classes']) * 0.5), const(randn(m['classes']) * 0.1)],
       steps=m['steps'], lr=m['lr'])

# ---------------------------------------------------------------- autograd behaviours


def accumulate(x):
    x = leaf(x)
    (x.sin() * x).sum().backward()
    first = x.grad.clone()
    (x * x * x).sum().backward()
    return first, x.grad


def retain_graph(x, wt):
    x, wt = leaf(x), leaf(wt)
    y = (x.exp() * wt).sum()
    y.backward(retain_graph=True)
    first = x.grad.clone()
    y.backward()
    return first, x.grad, wt.grad


def retain_grad_non_leaf(x, c):
    x = leaf(x)
    h = x.tanh()
    h.retain_grad()
    (h * h * c).sum().backward()
    return h.grad, x.grad


def hook_leaf(x):
    x = leaf(x)
    handle = x.register_hook(lambda g: g * 2)
    (x ** 3).sum().backward()
    hooked = x.grad.clone()
    handle.remove()
    x.grad = None
    (x ** 3).sum().backward()
    return hooked, x.grad


def hook_non_leaf(x):
    x = leaf(x)
    h = x * 3
    h.register_hook(lambda g: g + 1)
    h.sin().sum().backward()
    return x.grad


def backward_explicit(x, g):
    x = leaf(x)
    (x.exp() * 2).backward(g)
    return x.grad


def detach(x):
    x = leaf(x)
    (x * x.detach()).sum().backward()
    return x.grad


def reuse(x):
    """x feeds three consumers: gradients from each path add up inside one backward."""
    x = leaf(x)
    (x * x + x.exp() - x.sin() * x).sum().backward()
    return x.grad


def hook_leaf_and_retain(x):
    """A hook on a non-leaf replaces the gradient flowing on, and retain_grad sees the hooked value.

    The hook is registered before retain_grad: torch 1.13 runs them in
    registration order, torch >= 2.0 always runs retain_grad last; this
    order gives the same answer under both (and Kiln's engine).
    """
    x = leaf(x)
    h = x.square()
    h.register_hook(lambda g: g * 0.5)
    h.retain_grad()
    (h * 4).sum().backward()
    return h.grad, x.grad



def hook_leaf_used_twice(x):
    """A leaf feeding two ops: its hook runs once, on the summed gradient (a clamp shows the difference)."""
    x = leaf(x)
    calls = []
    x.register_hook(lambda g: calls.append(1) or g.clamp(-1, 1))
    (x * 2 + x * 3).sum().backward()
    assert len(calls) == 1
    return x.grad

w.case('grad/accumulate', 'grad/accumulate', accumulate, [const(randn(3, 4))])
w.case('grad/retainGraph', 'grad/retainGraph', retain_graph, [const(randn(2, 3)), const(randn(2, 3))])
w.case('grad/retainGradNonLeaf', 'grad/retainGradNonLeaf', retain_grad_non_leaf, [const(randn(4)), const(randn(4))])
w.case('grad/hookLeaf', 'grad/hookLeaf', hook_leaf, [const(randn(2, 2))])
w.case('grad/hookLeafUsedTwice', 'grad/hookLeafUsedTwice', hook_leaf_used_twice, [const(randn(4))])
w.case('grad/hookNonLeaf', 'grad/hookNonLeaf', hook_non_leaf, [const(randn(5))])
w.case('grad/hookNonLeafRetained', 'grad/hookNonLeafRetained', hook_leaf_and_retain, [const(randn(3))])
w.case('grad/backwardExplicit', 'grad/backwardExplicit', backward_explicit, [const(randn(2, 3)), const(randn(2, 3))])
w.case('grad/detach', 'grad/detach', detach, [const(randn(6))])
w.case('grad/reuse', 'grad/reuse', reuse, [const(randn(2, 5))])

# ---------------------------------------------------------------- gradient chains


def chain(name, fn, inputs, **args):
    w.case(f'chain/{name}', f'chain/{name}', fn, inputs, **args)


def idx(high, *shape):
    return Input(torch.randint(0, high, shape))


def transposed(rows, cols):
    return Input(randn(cols, rows), view=[{'op': 'transpose', 'args': [0, 1]}])


# Views, then a square so the gradient depends on the values that went through.
chain('permute', lambda x: x.permute(2, 0, 1).square(), [randn(2, 3, 4)])
chain('sliceStep', lambda x: x[:, 1:7:2].square(), [randn(5, 7)])
chain('sliceStepOfTransposed', lambda x: x.transpose(0, 1)[1:6:2].square(), [randn(4, 6)])
chain('expand', lambda x, y: x.expand(3, 4) * y, [randn(3, 1), randn(3, 4)])
chain('transposeMatmul', lambda x, m: x.transpose(0, 1).matmul(m), [randn(3, 4), randn(3, 2)])
chain('narrow', lambda x: x.narrow(1, 2, 3).exp(), [randn(3, 6)])
chain('select', lambda x: x.select(1, 2).square(), [randn(3, 4, 2)])
chain('squeezeUnsqueeze', lambda x: x.squeeze(1).unsqueeze(0).square(), [randn(3, 1, 4)])
chain('reshapeNonContiguous', lambda x: x.transpose(0, 1).reshape(2, 6).square(), [randn(3, 4)])
chain('viewsComposed', lambda x: x.permute(1, 0, 2)[:, :, ::2].reshape(-1).sin(), [randn(2, 3, 4)])
chain('transposedInput', lambda x: x.square().sum(1), [transposed(3, 5)])
# Broadcasting: each gradient must be reduced back to its input's shape.
chain('broadcast3', lambda a, b, c: a * b + c, [randn(3, 1), randn(4), randn(1, 4)])
chain('broadcast0d', lambda a, b: a * b - b.square() * a, [randn(), randn(2, 3)])
chain('broadcastLeading', lambda a, b: (a / b).sum(0), [randn(2, 3, 4), torch.rand(3, 1) + 0.5])
# Joins, splits, indexing.
chain('cat', lambda a, b: torch.cat([a, b.square()], 0).sin(), [randn(2, 3), randn(1, 3)])
chain('stack', lambda a, b: torch.stack([a, b * 2], 1), [randn(2, 3), randn(2, 3)])
chain('split', lambda x: [t.square() * (i + 1) for i, t in enumerate(x.split(2, 0))], [randn(5, 3)])
chain('chunk', lambda x: [t.exp() for t in x.chunk(3, 0)], [randn(7, 2)])
chain('gather', lambda x, i: x.gather(1, i).square(), [randn(3, 5), idx(5, 3, 4)])
chain('indexSelect', lambda x, i: x.index_select(0, i), [randn(5, 3), Input(torch.tensor([4, 0, 4, 1]))])
chain('pad', lambda x: F.pad(x, [1, 2, 0, 1], value=0.5).square(), [randn(2, 3)])
chain('where', lambda c, a, b: torch.where(c, a.exp(), b.square()), [Input(torch.rand(3, 4) < 0.5), randn(3, 4), randn(1, 4)])
chain('clamp', lambda x: x.clamp(-0.5, 0.7).square(), [randn(4, 5)])
# Reductions and their gradients.
chain('maxDim', lambda x: list(x.max(1)), [randn(3, 5)])
chain('minDimKeep', lambda x: x.min(0, keepdim=True)[0].exp(), [randn(4, 3)])
chain('minAll', lambda x: x.min() * x, [randn(3, 4)])
chain('maxAll', lambda x: x.max().exp(), [randn(6)])
chain('softmax', lambda x: x.softmax(1), [randn(3, 5)])
chain('logSoftmax', lambda x: x.log_softmax(0), [randn(4, 3)])
chain('logsumexp', lambda x: x.logsumexp(1), [randn(3, 6)])
chain('var', lambda x: x.var(1, unbiased=True), [randn(3, 5)])
chain('stdBiasedKeep', lambda x: x.std(0, unbiased=False, keepdim=True), [randn(6, 2)])
chain('meanSum', lambda x: x.mean(1).square().sum(), [randn(3, 4)])
# matmul: batched, broadcast batch, 1-D on either side.
chain('matmulBatched', torch.matmul, [randn(2, 3, 4), randn(2, 4, 5)])
chain('matmulBroadcastA', torch.matmul, [randn(3, 4), randn(2, 4, 5)])
chain('matmulBroadcastB', torch.matmul, [randn(2, 1, 3, 4), randn(3, 4, 2)])
chain('matmulVecMat', torch.matmul, [randn(4), randn(4, 3)])
chain('matmulMatVec', torch.matmul, [randn(3, 4), randn(4)])
chain('matmulDot', torch.matmul, [randn(5), randn(5)])
chain('matmulVecBatched', torch.matmul, [randn(4), randn(2, 4, 3)])

w.save()
