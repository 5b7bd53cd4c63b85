"""PyTorch reference outputs for @kiln/resnet's model (tests/resnet.*.test.ts).

    /usr/bin/python3 tests/reference/gen_resnet.py OUTDIR      (what scripts/setup.mjs does)

The weights are the seeded torchvision resnet18 that gen_resnet_io.py saves
as resnet_io/weights/resnet18.pth (torch.manual_seed(0); resnet18()); this
generator rebuilds the same model instead of writing a second 45 MB copy
(importing gen_resnet_io ties this output's hash to that generator, and
`checksums` lets the test prove the .pth it loads is this model).

A freshly initialised resnet18 has BatchNorm running stats 0/1, weight 1,
bias 0, which would hide any mistake in folding BN into the conv. So the
cases use it *calibrated*: running stats measured on one batch of noise
(momentum=None: exact batch statistics) and random affine parameters. Those
BN tensors are written to bn_calibration.safetensors (~150 KB) and the test
loads them over the .pth.

Cases (Writer format, tensors named by args.outputNames):
  checksums    float64 sums of a few tensors of the seed-0 state dict
  keys         resnet18 / resnet34 state-dict keys, shapes and dtypes
  logits       calibrated model, eval: input [2,3,224,224] -> logits, top-5
  features     calibrated model, eval: layer4 output and pooled features
  finetune     fc = seeded Linear(512, 10); layer4 + fc trainable (lr 1e-3 /
               1e-2, momentum 0.9), frozen BN in eval, the rest frozen;
               CrossEntropyLoss on labels [3, 7]; two SGD steps. Losses,
               step-1 gradients in full (every element is checked),
               parameters after each step (large tensors sampled every
               `step` elements, plus float64 sums), layer4 BN running stats
               after each step.
  classify     seed-0 model (no calibration) on rgb_300x200.png: logits, top-5
"""

import collections
import os
import sys

import torch
import torch.nn as nn
import torchvision
import torchvision.transforms as T

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import writer_from_argv  # noqa: E402
import gen_resnet_io  # noqa: E402,F401  (the .pth this reference assumes)
import resnet_io_images  # noqa: E402

IMAGES = ['rgb_300x200.png', 'rgb_199x257.png']
LABELS = [3, 7]
LR_LAYER4, LR_FC, MOMENTUM = 1e-3, 1e-2, 0.9
SAMPLE_TARGET = 4096


def eval_transform():
    return T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(),
                      T.Normalize(resnet_io_images.MEAN, resnet_io_images.STD)])


def images():
    pil = {name: img for name, img, _ in resnet_io_images.make_images()}
    tf = eval_transform()
    return torch.stack([tf(pil[n]) for n in IMAGES])


def seed0_resnet18():
    torch.manual_seed(0)
    return torchvision.models.resnet18()


def calibrate(model):
    """Real BN statistics (one noise batch, exact) and random affine parameters."""
    g = torch.Generator().manual_seed(2)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    with torch.no_grad():
        model(torch.randn(4, 3, 224, 224, generator=g))
        for m in bns:
            m.momentum = 0.1
            m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
            m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
    model.eval()
    return collections.OrderedDict(
        (k, v.detach().clone()) for k, v in model.state_dict().items()
        if k.rsplit('.', 1)[0] in {n for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)})


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
        self.w.cases.append({'name': self.name, 'op': 'resnet', 'args': {**self.args, 'outputNames': self.names},
                             'inputs': [], 'outputs': self.outputs, 'gradOutputs': [], 'grads': []})


def key_list(model):
    return [[k, list(v.shape), str(v.dtype).replace('torch.', '')] for k, v in model.state_dict().items()]


def main():
    w = writer_from_argv(__file__)
    x = images()

    model = seed0_resnet18().eval()
    sd = model.state_dict()
    Case(w, 'checksums', sums={k: float(sd[k].double().sum()) for k in
                               ['conv1.weight', 'layer3.1.conv2.weight', 'fc.weight', 'fc.bias']}).save()
    Case(w, 'keys', resnet18=key_list(model), resnet34=key_list(torchvision.models.resnet34()),
         resnet18Params=sum(p.numel() for p in model.parameters())).save()

    with torch.no_grad():
        one = eval_transform()(next(img for n, img, _ in resnet_io_images.make_images() if n == IMAGES[0]))
        logits = model(one[None])
    c = Case(w, 'classify', image=IMAGES[0])
    c.add('logits', logits)
    c.add('top5', logits.topk(6).indices)
    c.save()

    bn = calibrate(model)
    gen_resnet_io.write_safetensors(os.path.join(w.outdir, 'bn_calibration.safetensors'), bn,
                                    {'source': 'gen_resnet.py: BatchNorm tensors of the calibrated seed-0 resnet18'})

    with torch.no_grad():
        logits = model(x)
        h = model.maxpool(model.relu(model.bn1(model.conv1(x))))
        h = model.layer4(model.layer3(model.layer2(model.layer1(h))))
        pooled = torch.flatten(model.avgpool(h), 1)
    c = Case(w, 'logits', images=IMAGES)
    c.add('input', x)
    c.add('logits', logits)
    c.add('top5', logits.topk(5).indices)
    c.save()
    c = Case(w, 'features', images=IMAGES)
    c.add('layer4', h)
    c.add('pooled', pooled)
    c.save()

    # Fine-tuning: the transfer-learning recipe of the PyTorch tutorials.
    torch.manual_seed(1)
    model.fc = nn.Linear(512, 10)
    c = Case(w, 'finetune', labels=LABELS, lrLayer4=LR_LAYER4, lrFc=LR_FC, momentum=MOMENTUM)
    c.add('fc.weight.init', model.fc.weight)
    c.add('fc.bias.init', model.fc.bias)
    model.requires_grad_(False)
    model.layer4.requires_grad_(True)
    model.fc.requires_grad_(True)
    opt = torch.optim.SGD([{'params': model.layer4.parameters(), 'lr': LR_LAYER4},
                           {'params': model.fc.parameters(), 'lr': LR_FC}], lr=LR_FC, momentum=MOMENTUM)
    model.train()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d) and not m.weight.requires_grad:
            m.eval()
    loss_fn = nn.CrossEntropyLoss()
    labels = torch.tensor(LABELS)
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    c.args['trainable'] = [n for n, _ in trainable]
    sums = {}
    for step in (1, 2):
        opt.zero_grad()
        loss = loss_fn(model(x), labels)
        loss.backward()
        c.add(f'loss{step}', loss)
        if step == 1:
            # Every element (8.4M values, in the .bin side file): the test checks each one.
            for n, p in trainable:
                c.add(f'grad.{n}', p.grad)
        opt.step()
        for n, p in trainable:
            c.add_sampled(f'step{step}.{n}', p, sums)
        for n, b in model.layer4.named_buffers():
            if b.is_floating_point():
                c.add(f'step{step}.layer4.{n}', b)
    c.args['sums'] = sums
    c.save()
    w.save()


if __name__ == '__main__':
    main()
