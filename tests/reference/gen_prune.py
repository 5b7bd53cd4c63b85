"""PyTorch reference outputs for @kiln/nn's prune (tests/prune.*.test.ts).

    /usr/bin/python3 tests/reference/gen_prune.py OUTDIR      (what scripts/setup.mjs does)

Cases (tensors named by args.outputNames, as gen_resnet.py writes them):
  mask.*       one torch.nn.utils.prune call on a seeded conv [8,4,3,3],
               linear [6,10] or small linear [4,5] weight: the weight, the
               importance scores when given, the mask. Amounts include ints,
               fractions and ones where amount*size ends in .5 (Python rounds
               half to even). Every case is checked here to have no exact tie
               at the pruning boundary (|w| for unstructured; structured
               norms at least 1e-4 apart relatively, so float32-vs-float64
               norms cannot reorder them): PyTorch's topk order on ties is
               unspecified.
  iterative    three rounds on one conv weight [8,6,3,3]: ln_structured(2,
               n=1, dim=0), l1_unstructured(0.4), ln_structured(0.5, n=2,
               dim=1); the mask after each round.
  random       counts pruned by random_unstructured / random_structured.
  errors       amounts PyTorch rejects, with its messages.
  small        a small conv-bn-linear net pruned four ways, saved with
               torch.save as small_pruned.pth; its state-dict keys and eval output.
  global       the seed-0 torchvision resnet18 (the .pth gen_resnet_io.py
               saves), calibrated as gen_resnet.py does it (real BN statistics
               of one noise batch, random affine parameters; written to
               bn_calibration.safetensors here, so this reference does not go
               stale when gen_resnet.py changes), then
               global_unstructured(L1Unstructured, amount=0.2) over every conv:
               each mask bit-packed (np.packbits of the flat mask) with its
               zero count; input [2,3,64,64]; eval logits of the pruned model.
  finetune     that pruned model, train mode, SGD(lr=0.01, momentum=0.9) over
               all parameters, CrossEntropyLoss on labels [3, 7], one step:
               loss, weight_orig gradients and weight_orig after the step
               (sampled every `step` elements, plus float64 sums); then
               prune.remove on every conv and the state dict (sampled + sums).
"""

import collections
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.utils.prune as prune

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import writer_from_argv  # noqa: E402
import gen_resnet_io  # noqa: E402  (the seed-0 resnet18 .pth this reference assumes)

LABELS = [3, 7]
LR, MOMENTUM = 0.01, 0.9
SAMPLE_TARGET = 4096


def seed0_resnet18():
    torch.manual_seed(0)
    import torchvision
    return torchvision.models.resnet18()


def calibrate(model):
    """Real BN statistics (one noise batch, exact) and random affine parameters; returns the BN tensors."""
    g = torch.Generator().manual_seed(12)
    bns = {n for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)}
    for n, m in model.named_modules():
        if n in bns:
            m.reset_running_stats()
            m.momentum = None
    model.train()
    with torch.no_grad():
        model(torch.randn(4, 3, 64, 64, generator=g))
        for n, m in model.named_modules():
            if n in bns:
                m.momentum = 0.1
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
    model.eval()
    return collections.OrderedDict((k, v.detach().clone()) for k, v in model.state_dict().items() if k.rsplit('.', 1)[0] in bns)


def sample(t):
    """Every `step`-th element of a large tensor (all of a small one), and the step."""
    flat = t.detach().reshape(-1)
    step = 1 if flat.numel() <= SAMPLE_TARGET else flat.numel() // SAMPLE_TARGET + 1
    return flat[::step].clone(), step


class Case:
    def __init__(self, w, name, **args):
        self.w, self.name, self.args, self.names, self.outputs = w, name, args, [], []

    def add(self, key, t):
        self.names.append(key)
        self.outputs.append(self.w.tensor(t.detach()))

    def add_sampled(self, key, t, sums):
        s, step = sample(t)
        self.args.setdefault('steps', {})[key] = step
        sums[key] = float(t.detach().double().sum())
        self.add(key, s)

    def save(self):
        self.w.cases.append({'name': self.name, 'op': 'prune', 'args': {**self.args, 'outputNames': self.names},
                             'inputs': [], 'outputs': self.outputs, 'gradOutputs': [], 'grads': []})


def count(amount, size):
    return amount if isinstance(amount, int) else round(amount * size)


def check_unstructured_gap(scores, k):
    s = scores.detach().abs().reshape(-1).sort().values
    if 0 < k < s.numel():
        assert s[k - 1] != s[k], f'tie at the pruning boundary ({s[k - 1].item()})'


def norms(t, n, dim):
    dims = [d for d in range(t.dim()) if d != dim % t.dim()]
    return torch.norm(t.double(), p=n, dim=dims)


def check_structured_gap(scores, n, dim, k):
    s = norms(scores, n, dim).sort().values
    if 0 < k < s.numel():
        assert (s[k] - s[k - 1]) > 1e-4 * s[k].abs(), f'near-tie of norms at the boundary ({s[k - 1].item()}, {s[k].item()})'


def seeded_modules():
    g = torch.Generator().manual_seed(5)
    conv = nn.Conv2d(4, 8, 3)
    lin = nn.Linear(10, 6)
    small = nn.Linear(5, 4)
    with torch.no_grad():
        for m in (conv, lin, small):
            m.weight.copy_(torch.randn(m.weight.shape, generator=g))
    return {'conv': conv, 'linear': lin, 'small': small}, g


MASK_CASES = [
    # (tensor, method, amount, n, dim, importance)
    ('conv', 'l1', 7, None, None, False),
    ('conv', 'l1', 0.3, None, None, False),
    ('conv', 'l1', 0, None, None, False),
    ('conv', 'l1', 0.2, None, None, True),
    ('linear', 'l1', 0.45, None, None, False),
    ('linear', 'l1', 13, None, None, False),
    ('small', 'l1', 0.125, None, None, False),   # 2.5 -> 2
    ('small', 'l1', 0.375, None, None, False),   # 7.5 -> 8
    ('conv', 'ln', 0.3125, 1, 0, False),         # 2.5 channels -> 2
    ('conv', 'ln', 0.3125, 2, 0, False),
    ('conv', 'ln', 3, float('inf'), 0, False),
    ('conv', 'ln', 3, float('-inf'), 0, False),
    ('conv', 'ln', 0.375, 1, 1, False),          # 1.5 -> 2
    ('conv', 'ln', 0.375, 2, 1, False),
    ('conv', 'ln', 0.125, 2, 1, False),          # 0.5 -> 0: mask unchanged
    ('conv', 'ln', 1, float('inf'), 1, False),
    ('conv', 'ln', 1, 1, -1, False),
    ('conv', 'ln', 1, 2, -1, False),
    ('conv', 'ln', 2, float('inf'), -1, False),
    ('conv', 'ln', 0.5, 2, 0, True),
    ('linear', 'ln', 0.5, 1, 0, False),
    ('linear', 'ln', 3, 2, 1, False),
    ('linear', 'ln', 0.25, float('inf'), -1, False),
    ('linear', 'ln', 2, 2, 0, False),
]


def mask_cases(w):
    for i, (which, method, amount, n, dim, with_scores) in enumerate(MASK_CASES):
        mods, g = seeded_modules()
        m = mods[which]
        scores = torch.randn(m.weight.shape, generator=g) if with_scores else None
        ranked = scores if scores is not None else m.weight
        if method == 'l1':
            check_unstructured_gap(ranked, count(amount, ranked.numel()))
            prune.l1_unstructured(m, 'weight', amount=amount, importance_scores=scores)
        else:
            check_structured_gap(ranked, n, dim, count(amount, ranked.shape[dim]))
            prune.ln_structured(m, 'weight', amount=amount, n=n, dim=dim, importance_scores=scores)
        c = Case(w, f'mask.{i}', tensor=which, method=method, amount=amount, isInt=isinstance(amount, int),
                 n=None if n is None else ('Infinity' if n == float('inf') else '-Infinity' if n == float('-inf') else n),
                 dim=dim, pruned=int((m.weight_mask == 0).sum()))
        c.add('weight', m.weight_orig)
        if scores is not None:
            c.add('scores', scores)
        c.add('mask', m.weight_mask)
        c.save()


def iterative_case(w):
    g = torch.Generator().manual_seed(9)
    conv = nn.Conv2d(6, 8, 3)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=g))
    c = Case(w, 'iterative', rounds=[['ln', 2, 1, 0], ['l1', 0.4], ['ln', 0.5, 2, 1]])
    c.add('weight', conv.weight)
    check_structured_gap(conv.weight, 1, 0, 2)
    prune.ln_structured(conv, 'weight', amount=2, n=1, dim=0)
    c.add('mask1', conv.weight_mask)
    remaining = conv.weight[conv.weight_mask == 1]
    check_unstructured_gap(remaining, round(0.4 * remaining.numel()))
    prune.l1_unstructured(conv, 'weight', amount=0.4)
    c.add('mask2', conv.weight_mask)
    kept = (conv.weight_mask.sum(dim=[0, 2, 3]) != 0)
    check_structured_gap(conv.weight[:, kept], 2, 1, round(0.5 * int(kept.sum())))
    prune.ln_structured(conv, 'weight', amount=0.5, n=2, dim=1)
    c.add('mask3', conv.weight_mask)
    assert isinstance(conv._forward_pre_hooks[next(iter(conv._forward_pre_hooks))], prune.PruningContainer)
    c.save()


def random_case(w):
    mods, _ = seeded_modules()
    prune.random_unstructured(mods['conv'], 'weight', amount=0.3)
    prune.random_structured(mods['linear'], 'weight', amount=0.5, dim=0)
    prune.random_structured(mods['small'], 'weight', amount=2, dim=1)
    Case(w, 'random', conv=int((mods['conv'].weight_mask == 0).sum()),
         linearRows=int((mods['linear'].weight_mask.sum(1) == 0).sum()),
         smallCols=int((mods['small'].weight_mask.sum(0) == 0).sum())).save()


def errors_case(w):
    out = []
    for method, amount in [('l1', -1), ('l1', 1.5), ('l1', 300), ('ln', 9)]:
        mods, _ = seeded_modules()
        try:
            if method == 'l1':
                prune.l1_unstructured(mods['conv'], 'weight', amount=amount)
            else:
                prune.ln_structured(mods['conv'], 'weight', amount=amount, n=2, dim=0)
        except (ValueError, TypeError) as e:
            out.append([method, amount, str(e)])
        else:
            raise AssertionError(f'PyTorch accepted amount={amount}')
    Case(w, 'errors', cases=out).save()


class SmallNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(4)
        self.fc = nn.Linear(100, 3)

    def forward(self, x):
        return self.fc(torch.flatten(torch.relu(self.bn1(self.conv1(x))), 1))


SMALL_PRUNED = [['conv1', 'weight'], ['conv1', 'bias'], ['fc', 'weight']]


def small_case(w):
    torch.manual_seed(4)
    net = SmallNet()
    x = torch.randn(2, 3, 5, 5)
    with torch.no_grad():
        net.bn1.running_mean.copy_(torch.randn(4) * 0.1)
        net.bn1.running_var.copy_(torch.rand(4) + 0.5)
    prune.l1_unstructured(net.conv1, 'weight', amount=0.3)
    prune.ln_structured(net.conv1, 'weight', amount=1, n=2, dim=0)
    prune.l1_unstructured(net.conv1, 'bias', amount=1)
    prune.l1_unstructured(net.fc, 'weight', amount=0.5)
    net.eval()
    torch.save(net.state_dict(), os.path.join(w.outdir, 'small_pruned.pth'))
    c = Case(w, 'small', pruned=SMALL_PRUNED, keys=list(net.state_dict().keys()))
    c.add('input', x)
    with torch.no_grad():
        c.add('output', net(x))
    c.save()


def resnet_cases(w):
    model = seed0_resnet18()
    checksum = float(model.conv1.weight.detach().double().sum())
    bn = calibrate(model)
    gen_resnet_io.write_safetensors(os.path.join(w.outdir, 'bn_calibration.safetensors'), bn,
                                    {'source': 'gen_prune.py: BatchNorm tensors of the calibrated seed-0 resnet18'})
    convs = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    scores = torch.cat([m.weight.detach().abs().reshape(-1) for _, m in convs])
    check_unstructured_gap(scores, round(0.2 * scores.numel()))
    prune.global_unstructured([(m, 'weight') for _, m in convs], pruning_method=prune.L1Unstructured, amount=0.2)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(6))
    c = Case(w, 'global', convs=[n for n, _ in convs], amount=0.2, conv1Sum=checksum,
             zeros={n: int((m.weight_mask == 0).sum()) for n, m in convs})
    for n, m in convs:
        c.add(f'mask.{n}', torch.from_numpy(np.packbits(m.weight_mask.reshape(-1).numpy().astype(np.uint8))))
    c.add('input', x)
    model.eval()
    with torch.no_grad():
        c.add('logits', model(x))
    c.save()

    c = Case(w, 'finetune', labels=LABELS, lr=LR, momentum=MOMENTUM)
    sums = {}
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    opt.zero_grad()
    loss = nn.CrossEntropyLoss()(model(x), torch.tensor(LABELS))
    loss.backward()
    c.add('loss', loss)
    for n, m in convs:
        c.add_sampled(f'grad.{n}.weight_orig', m.weight_orig.grad, sums)
    opt.step()
    for n, m in convs:
        c.add_sampled(f'step.{n}.weight_orig', m.weight_orig, sums)
    for _, m in convs:
        prune.remove(m, 'weight')
    sd = model.state_dict()
    c.args['keys'] = list(sd.keys())
    for k, v in sd.items():
        if v.is_floating_point():
            c.add_sampled(f'removed.{k}', v, sums)
    c.args['sums'] = sums
    c.save()


def main():
    w = writer_from_argv(__file__)
    mask_cases(w)
    iterative_case(w)
    random_case(w)
    errors_case(w)
    small_case(w)
    resnet_cases(w)
    w.save()


if __name__ == '__main__':
    main()
