"""PyTorch's side of Kiln's ONNX export tests (tests/onnx.*.test.ts).

    /usr/bin/python3 tests/reference/gen_onnx.py OUTDIR      (what scripts/setup.mjs does)

The model is gen_resnet.py's calibrated seed-0 torchvision resnet18 (real
BatchNorm statistics and random affine, so folding BN into the convs is
visible), rebuilt here from the same seeds; Kiln loads the same weights from
resnet_io's .pth plus gen_resnet's bn_calibration.safetensors.

Files:
  resnet18.onnx   torch.onnx.export of the calibrated model, opset 17, input
                  [batch, 3, 64, 64] named 'input', output 'logits', dynamic
                  batch: what Kiln's round-trip test loads weights from.

Cases (Writer format, tensors named by args.outputNames):
  histograms   op_type -> count of torch.onnx.export (default constant folding,
               eval) for: resnet18 at opset 13 and 17, the feature extractor
               (fc = Identity, output [B, 512]) and a 10-class head
               (fc = seeded Linear(512, 10)), opset 17; plus the node names
               of the opset-17 resnet18 export.
  logits       input [3, 3, 64, 64] (seeded) -> the calibrated model's logits,
               and the head10 model's logits and its fc weights.
"""

import io
import os
import sys
from collections import Counter

import onnx
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import writer_from_argv  # noqa: E402
import gen_resnet  # noqa: E402  (the calibrated model this reference assumes)

SIZE = 64


def export(model, opset, path=None):
    """torch.onnx.export with torch's defaults (eval, constant folding), dynamic batch."""
    buf = io.BytesIO()
    torch.onnx.export(model, torch.zeros(1, 3, SIZE, SIZE), buf, opset_version=opset,
                      input_names=['input'], output_names=['logits'],
                      dynamic_axes={'input': {0: 'batch'}, 'logits': {0: 'batch'}})
    data = buf.getvalue()
    if path:
        with open(path, 'wb') as f:
            f.write(data)
    return onnx.load_model_from_string(data)


def histogram(m):
    return dict(Counter(n.op_type for n in m.graph.node))


class Case:
    def __init__(self, w, name, **args):
        self.w, self.name, self.args, self.names, self.outputs = w, name, args, [], []

    def add(self, key, t):
        self.names.append(key)
        self.outputs.append(self.w.tensor(t.detach()))

    def save(self):
        self.w.cases.append({'name': self.name, 'op': 'onnx', 'args': {**self.args, 'outputNames': self.names},
                             'inputs': [], 'outputs': self.outputs, 'gradOutputs': [], 'grads': []})


def main():
    w = writer_from_argv(__file__)
    model = gen_resnet.seed0_resnet18()
    gen_resnet.calibrate(model)
    model.eval()

    main17 = export(model, 17, os.path.join(w.outdir, 'resnet18.onnx'))
    hist = {'resnet18_opset17': histogram(main17), 'resnet18_opset13': histogram(export(model, 13))}

    fc = model.fc
    model.fc = nn.Identity()
    hist['features_opset17'] = histogram(export(model, 17))
    torch.manual_seed(10)
    head = nn.Linear(512, 10)
    model.fc = head
    hist['head10_opset17'] = histogram(export(model, 17))
    Case(w, 'histograms', histograms=hist, nodeNames=[n.name for n in main17.graph.node]).save()

    g = torch.Generator().manual_seed(5)
    x = torch.randn(3, 3, SIZE, SIZE, generator=g)
    c = Case(w, 'logits')
    with torch.no_grad():
        c.add('input', x)
        c.add('head10_logits', model(x))
        c.add('head10_weight', head.weight)
        c.add('head10_bias', head.bias)
        model.fc = fc
        c.add('logits', model(x))
    c.save()
    w.save()


if __name__ == '__main__':
    main()
