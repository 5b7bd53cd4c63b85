"""Reference outputs for convs on small maps (tests/cnn.small-maps.parity.test.ts).

ResNet18's convs as the 32x32 demo (examples/demo) runs them: layer2 on
8x8 -> 4x4 maps, layer3 on 4x4 -> 2x2, layer4 on 2x2 -> 1x1, at the demo's
transfer batch of 16. These are the shapes whose routes are chosen by map
size (ops/conv.ts, tuning.ts): the direct kernel instead of im2col below
one GEMM block of output pixels per image, no Winograd where its tiles
would be mostly padding, the single-tap GEMMs (ops/conv-tap.ts) on the 1x1
maps and the 1x1 stride-2 downsample of a 2x2 map, and the input gradient
with images folded into its columns. Forward values and the input and
weight gradients for a seeded upstream gradient, in common.py's format; the
Kiln call for each op is in tests/parity/cnn-table.ts.
"""

import math

import torch
import torch.nn.functional as F

from common import Input, seed, writer_from_argv

seed(0)
w = writer_from_argv(__file__)


def randn(*shape):
    return torch.randn(shape)


def weight(*shape):
    """randn scaled by 1/sqrt(fan_in), so conv outputs stay O(1) at any width."""
    return torch.randn(shape) / math.sqrt(math.prod(shape[1:]))


def const(t):
    """An operand whose gradient is not checked."""
    return Input(t, requires_grad=False)


def conv(x, wt, b=None, stride=1, padding=0, dilation=1, groups=1):
    return F.conv2d(x, wt, b, stride=stride, padding=padding, dilation=dilation, groups=groups)


def conv_epilogue(x, wt, b, residual, stride=1, padding=0, relu=True):
    y = F.conv2d(x, wt, b, stride=stride, padding=padding) + residual
    return F.relu(y) if relu else y


BATCH = 16
DEMO32_CONVS = [
    # name, in, out, kernel, stride, padding, input map
    ('layer2.0.conv1', 64, 128, 3, 2, 1, 8),
    ('layer2.0.downsample', 64, 128, 1, 2, 0, 8),
    ('layer2.conv', 128, 128, 3, 1, 1, 4),
    ('layer3.0.conv1', 128, 256, 3, 2, 1, 4),
    ('layer3.0.downsample', 128, 256, 1, 2, 0, 4),
    ('layer3.conv', 256, 256, 3, 1, 1, 2),
    ('layer4.0.conv1', 256, 512, 3, 2, 1, 2),
    ('layer4.0.downsample', 256, 512, 1, 2, 0, 2),
    ('layer4.conv', 512, 512, 3, 1, 1, 1),
]
for name, cin, cout, k, s, p, hw in DEMO32_CONVS:
    w.case(f'conv2dSmall/{name}_{cin}to{cout}_k{k}s{s}_{hw}x{hw}_n{BATCH}', 'conv2d', conv,
           [randn(BATCH, cin, hw, hw), weight(cout, cin, k, k)], stride=s, padding=p)

# One-pixel outputs: a 5x5 pad-2 conv with bias on a 1x1 map (one tap, (2, 2)); a
# dilated 3x3 on a 1x1 map (one tap, (1, 1)); a 1x3 kernel at stride 2 on a 1x3 map
# (one pixel out, but three taps in the image: not single-tap, another route). Odd batches.
w.case('conv2dSmall/k5p2_1x1_bias', 'conv2d', conv, [randn(3, 8, 1, 1), weight(12, 8, 5, 5), randn(12)], padding=2)
w.case('conv2dSmall/k3p0s2_1x3_bias', 'conv2d', conv, [randn(3, 8, 1, 3), weight(12, 8, 1, 3), randn(12)], stride=2)
w.case('conv2dSmall/k3p1_dil2_1x1', 'conv2d', conv, [randn(5, 4, 1, 1), weight(6, 4, 3, 3)], padding=2, dilation=2)
# The fused epilogue (bias, residual, ReLU) on the single-tap route, with gradients.
w.case('conv2dEpilogue/small_layer4_1x1', 'conv2dEpilogue', conv_epilogue,
       [randn(4, 64, 1, 1), weight(64, 64, 3, 3), randn(64) * 0.1, randn(4, 64, 1, 1)], padding=1, relu=True)
# Without gradients the epilogue rides in the GEMM.
w.case('conv2dFused/small_layer4_1x1', 'conv2dFused', conv_epilogue,
       [const(randn(4, 64, 1, 1)), const(weight(64, 64, 3, 3)), const(randn(64) * 0.1), const(randn(4, 64, 1, 1))],
       padding=1, relu=True)

w.save()
