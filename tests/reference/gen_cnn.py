"""Reference outputs for Kiln's CNN ops (tests/cnn.*.test.ts).

conv2d, batchNorm, maxPool2d / avgPool2d / adaptiveAvgPool2d, linear,
crossEntropy / nllLoss / mseLoss: forward values and the gradients of every
floating-point operand (input, weight, bias) for a seeded upstream gradient,
in the format of common.py. Op names and argument names are Kiln's; the Kiln
call for each op is in tests/parity/cnn-table.ts.

Shapes are small (CI has 2 cores and WebGPU runs on lavapipe) but chosen to
break kernels: odd and non-square maps, 1x1 kernels, kernels as large as the
input, even kernels with padding='same', channels that are not multiples of
4, groups and depthwise, batch 1 and > 1, channels-last and strided views,
and every distinct conv of ResNet18 at a quarter of its spatial size.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.stateless import functional_call

from common import Input, apply_view, seed, writer_from_argv

seed(0)
w = writer_from_argv(__file__)


def randn(*shape):
    return torch.randn(shape)


def weight(*shape):
    """randn scaled by 1/sqrt(fan_in), so conv outputs stay O(1) at any width."""
    fan_in = math.prod(shape[1:])
    return torch.randn(shape) / math.sqrt(fan_in)


def const(t):
    """An operand whose gradient is not checked."""
    return Input(t, requires_grad=False)


def channels_last(n, c, h, wd):
    """An NCHW operand stored NHWC: a permuted, non-contiguous view."""
    return Input(randn(n, h, wd, c), view=[{'op': 'permute', 'args': [0, 3, 1, 2]}])


def strided_width(n, c, h, wd):
    """An NCHW operand taking every second column of a wider base."""
    return Input(randn(n, c, h, 2 * wd), view=[{'op': 'slice', 'args': [3, 0, 2 * wd, 2]}])


# ---------------------------------------------------------------- conv2d


def conv(x, wt, b=None, stride=1, padding=0, dilation=1, groups=1):
    return F.conv2d(x, wt, b, stride=stride, padding=padding, dilation=dilation, groups=groups)


def conv_case(name, x_shape, w_shape, bias=True, x=None, **args):
    x = x if x is not None else randn(*x_shape)
    inputs = [x, weight(*w_shape)] + ([randn(w_shape[0]) * 0.1] if bias else [])
    w.case(f'conv2d/{name}', 'conv2d', conv, inputs, **args)


conv_case('3x3_p1', (2, 3, 8, 8), (4, 3, 3, 3), padding=1)
conv_case('3x3_nobias', (1, 3, 6, 6), (5, 3, 3, 3), bias=False)
conv_case('stride2_p1_odd', (2, 3, 7, 5), (4, 3, 3, 3), stride=2, padding=1)
conv_case('stride_pair_pad_pair', (1, 2, 9, 7), (3, 2, 3, 2), stride=[2, 1], padding=[1, 0])
conv_case('1x1', (2, 5, 5, 3), (6, 5, 1, 1))
conv_case('1x1_stride2', (1, 4, 7, 7), (3, 4, 1, 1), stride=2, bias=False)
conv_case('kernel_eq_input', (2, 3, 5, 4), (2, 3, 5, 4))
conv_case('7x5_input_5x3_kernel', (1, 2, 7, 5), (3, 2, 5, 3), padding=[2, 1])
conv_case('dilation2', (1, 3, 9, 8), (4, 3, 3, 3), dilation=2, padding=2)
conv_case('dilation_pair', (2, 2, 8, 9), (3, 2, 3, 2), dilation=[2, 3], padding=[1, 2], stride=[1, 2])
conv_case('groups2', (2, 4, 6, 6), (6, 2, 3, 3), groups=2, padding=1)
conv_case('groups3_stride2', (1, 6, 7, 7), (3, 2, 3, 3), groups=3, stride=2)
conv_case('depthwise', (2, 5, 6, 5), (5, 1, 3, 3), groups=5, padding=1)
conv_case('depthwise_multiplier2', (1, 3, 5, 5), (6, 1, 3, 3), groups=3, padding=1, bias=False)
conv_case('same_3x3', (1, 3, 6, 7), (2, 3, 3, 3), padding='same')
conv_case('same_even_2x2', (2, 2, 5, 6), (3, 2, 2, 2), padding='same')
conv_case('same_even_4x3', (1, 2, 7, 6), (2, 2, 4, 3), padding='same')
conv_case('same_even_dilated', (1, 2, 8, 8), (2, 2, 2, 2), padding='same', dilation=3)
conv_case('valid', (1, 3, 6, 5), (2, 3, 3, 3), padding='valid')
conv_case('batch1_channels1', (1, 1, 5, 5), (1, 1, 3, 3), padding=1)
conv_case('channels_last_input', None, (4, 3, 3, 3), x=channels_last(2, 3, 6, 5), padding=1)
conv_case('strided_input', None, (3, 2, 3, 3), x=strided_width(1, 2, 5, 6), stride=2, padding=1)

conv_case('padding_larger_than_kernel', (1, 2, 4, 5), (3, 2, 3, 3), padding=3)
conv_case('stride_larger_than_kernel', (2, 2, 9, 8), (3, 2, 2, 2), stride=3)
conv_case('unbatched_3d', (3, 6, 5), (4, 3, 3, 3), padding=1)
conv_case('empty_batch', (0, 3, 5, 5), (2, 3, 3, 3), padding=1)
w.case('conv2d/weight_noncontiguous', 'conv2d', conv,
       [randn(2, 3, 6, 6), Input(weight(3, 3, 3, 4), view=[{'op': 'permute', 'args': [3, 0, 1, 2]}])], padding=1)
w.case('conv2d/bias_strided', 'conv2d', conv,
       [randn(1, 2, 5, 5), weight(3, 2, 3, 3), Input(randn(6), view=[{'op': 'slice', 'args': [0, 0, 6, 2]}])])

# Every distinct conv of torchvision's resnet18 (channels, kernel, stride,
# padding as in the model) on a 56x56 image, a quarter of 224: the maps are
# 28 (stem), 14 (layer1), 7, 4, 2, batch 1.
RESNET18_CONVS = [
    # name, in, out, kernel, stride, padding, input map
    ('conv1', 3, 64, 7, 2, 3, 56),
    ('layer1.conv', 64, 64, 3, 1, 1, 14),
    ('layer2.0.conv1', 64, 128, 3, 2, 1, 14),
    ('layer2.0.downsample', 64, 128, 1, 2, 0, 14),
    ('layer2.conv', 128, 128, 3, 1, 1, 7),
    ('layer3.0.conv1', 128, 256, 3, 2, 1, 7),
    ('layer3.0.downsample', 128, 256, 1, 2, 0, 7),
    ('layer3.conv', 256, 256, 3, 1, 1, 4),
    ('layer4.0.conv1', 256, 512, 3, 2, 1, 4),
    ('layer4.0.downsample', 256, 512, 1, 2, 0, 4),
    ('layer4.conv', 512, 512, 3, 1, 1, 2),
]
for name, cin, cout, k, s, p, hw in RESNET18_CONVS:
    # torchvision's convs have no bias (BatchNorm follows).
    w.case(f'conv2dResnet/{name}_{cin}to{cout}_k{k}s{s}_{hw}x{hw}', 'conv2d', conv,
           [randn(1, cin, hw, hw), weight(cout, cin, k, k)], stride=s, padding=p)


# Fused epilogue (inference path): relu(conv + bias + residual), no gradients.
def conv_fused(x, wt, b, residual=None, stride=1, padding=0, relu=True):
    y = F.conv2d(x, wt, b, stride=stride, padding=padding)
    if residual is not None:
        y = y + residual
    return F.relu(y) if relu else y


w.case('conv2dFused/residual_relu', 'conv2dFused', conv_fused,
       [const(randn(2, 4, 6, 5)), const(weight(4, 4, 3, 3)), const(randn(4) * 0.1), const(randn(2, 4, 6, 5))],
       padding=1, relu=True)
w.case('conv2dFused/relu_only', 'conv2dFused', lambda x, wt, b, **a: conv_fused(x, wt, b, None, **a),
       [const(randn(1, 3, 7, 7)), const(weight(5, 3, 3, 3)), const(randn(5) * 0.1)], stride=2, padding=1, relu=True)
w.case('conv2dFused/residual_only', 'conv2dFused', conv_fused,
       [const(randn(1, 6, 4, 4)), const(weight(6, 6, 1, 1)), const(randn(6) * 0.1), const(randn(1, 6, 4, 4))],
       relu=False)
w.case('conv2dFused/resnet_layer2', 'conv2dFused', conv_fused,
       [const(randn(1, 128, 7, 7)), const(weight(128, 128, 3, 3)), const(randn(128) * 0.1), const(randn(1, 128, 7, 7))],
       padding=1, relu=True)

# The epilogue with gradients on: Kiln composes conv + add + relu, so the
# residual gets a gradient too.
w.case('conv2dEpilogue/with_grad', 'conv2dEpilogue', conv_fused,
       [randn(2, 3, 5, 5), weight(3, 3, 3, 3), randn(3) * 0.1, randn(2, 3, 5, 5)], padding=1, relu=True)

# ---------------------------------------------------------------- batchNorm
# Inputs: x, then weight and bias when affine, then runningMean and
# runningVar when tracked. Outputs: y, then the updated running stats
# (training with tracked stats) as non-differentiable outputs.


def batch_norm(x, *rest, affine, training, tracked=True, momentum=0.1, numBatchesTracked=0, eps=1e-5):
    rest = list(rest)
    wt, b = (rest.pop(0), rest.pop(0)) if affine else (None, None)
    if not tracked:
        return F.batch_norm(x, None, None, wt, b, training=True, momentum=0.1, eps=eps)
    rm, rv = rest[0].clone(), rest[1].clone()
    # Through the real module, so momentum=None means exactly what
    # nn.BatchNorm does with num_batches_tracked.
    module = (nn.BatchNorm1d if x.dim() in (2, 3) else nn.BatchNorm2d)(
        x.shape[1], eps=eps, momentum=momentum, affine=affine)
    module.train(training)
    state = {'running_mean': rm, 'running_var': rv,
             'num_batches_tracked': torch.tensor(numBatchesTracked, dtype=torch.long)}
    if affine:
        state.update(weight=wt, bias=b)
    y = functional_call(module, state, (x,))
    if not training:
        return y
    # functional_call swaps the buffers in: the in-place running-stat update lands in rm, rv.
    count = x.numel() / x.shape[1]
    m = 1.0 / (numBatchesTracked + 1) if momentum is None else momentum
    dims = [d for d in range(x.dim()) if d != 1]
    xd = x.detach()
    assert torch.allclose(rm, (1 - m) * rest[0] + m * xd.mean(dims), atol=1e-6)
    assert torch.allclose(rv, (1 - m) * rest[1] + m * xd.var(dims, unbiased=True), atol=1e-6)
    assert count > 1
    return y, rm, rv


def bn_case(name, x, affine=True, tracked=True, **args):
    c = (x if isinstance(x, torch.Tensor) else apply_view(x.base, x.view)).shape[1]
    inputs = [x]
    if affine:
        inputs += [torch.rand(c) + 0.5, randn(c) * 0.5]
    if tracked:
        inputs += [const(randn(c) * 0.2), const(torch.rand(c) + 0.5)]
    w.case(f'batchNorm/{name}', 'batchNorm', batch_norm, inputs, affine=affine, tracked=tracked, **args)


bn_case('train_4d_affine', randn(3, 4, 5, 3) * 2 + 1, training=True)
bn_case('train_4d_noaffine', randn(2, 3, 4, 4), affine=False, training=True)
bn_case('train_2d_affine', randn(6, 5) * 3 - 1, training=True)
bn_case('train_2d_noaffine', randn(4, 3), affine=False, training=True)
bn_case('train_momentum_0.3', randn(2, 3, 3, 3), training=True, momentum=0.3)
bn_case('train_momentum_none_first', randn(2, 3, 4, 2), training=True, momentum=None, numBatchesTracked=0)
bn_case('train_momentum_none_5', randn(2, 3, 4, 2), training=True, momentum=None, numBatchesTracked=5)
bn_case('train_momentum_none_2d', randn(5, 4), affine=False, training=True, momentum=None, numBatchesTracked=2)
bn_case('train_untracked', randn(2, 3, 3, 2), tracked=False, training=True)
bn_case('train_eps', randn(2, 2, 3, 3) * 0.01, training=True, eps=1e-3)
bn_case('train_batch1_4d', randn(1, 3, 4, 5), training=True)
bn_case('train_channels_last', Input(randn(2, 3, 4, 5), view=[{'op': 'permute', 'args': [0, 3, 1, 2]}]), training=True)
const_channel = randn(2, 3, 3, 3)
const_channel[:, 1] = 0.5  # zero variance: the eps keeps it finite
bn_case('train_constant_channel', const_channel, training=True)
bn_case('eval_4d_affine', randn(2, 4, 3, 3), training=False)
bn_case('eval_4d_noaffine', randn(2, 3, 2, 4), affine=False, training=False)
bn_case('eval_2d_affine', randn(3, 6), training=False)

# ---------------------------------------------------------------- pooling


def max_pool(x, kernel, stride=None, padding=0, dilation=1, ceilMode=False):
    return F.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode=ceilMode, return_indices=True)


def pool_input(*shape, ties=False):
    # Ties: small integers, so windows hold equal maxima (PyTorch takes the first).
    return torch.randint(-2, 3, shape).float() if ties else randn(*shape)


for name, shape, args in [
    ('2x2', (2, 3, 6, 6), dict(kernel=2)),
    ('3x3_s2_p1', (1, 2, 7, 7), dict(kernel=3, stride=2, padding=1)),
    ('3x3_s2_p1_resnet', (1, 4, 14, 14), dict(kernel=3, stride=2, padding=1)),
    ('overlap_s1', (2, 2, 5, 4), dict(kernel=3, stride=1)),
    ('rect_kernel', (1, 3, 7, 6), dict(kernel=[3, 2], stride=[2, 1], padding=[1, 0])),
    ('dilation2', (1, 2, 9, 8), dict(kernel=3, stride=2, dilation=2, padding=1)),
    ('ceil_mode', (2, 2, 7, 5), dict(kernel=2, stride=2, ceilMode=True)),
    ('ceil_mode_p1', (1, 2, 8, 6), dict(kernel=3, stride=2, padding=1, ceilMode=True)),
    ('ceil_mode_last_window_dropped', (1, 1, 5, 5), dict(kernel=2, stride=2, padding=1, ceilMode=True)),
    ('kernel_eq_input', (2, 3, 4, 5), dict(kernel=[4, 5])),
]:
    w.case(f'maxPool2d/{name}', 'maxPool2d', max_pool, [pool_input(*shape)], **args)
w.case('maxPool2d/unbatched_3d', 'maxPool2d', max_pool, [randn(2, 5, 5)], kernel=2, stride=2, ceilMode=True)
w.case('adaptiveAvgPool2d/1x1_input_to_3x2', 'adaptiveAvgPool2d', lambda x, outputSize: F.adaptive_avg_pool2d(x, outputSize),
       [randn(2, 3, 1, 1)], outputSize=[3, 2])
w.case('maxPool2d/ties', 'maxPool2d', max_pool, [pool_input(2, 2, 6, 6, ties=True)], kernel=2)
w.case('maxPool2d/ties_overlap', 'maxPool2d', max_pool, [pool_input(1, 2, 6, 5, ties=True)], kernel=3, stride=1, padding=1)
# Padding must act as -inf: all-negative inputs expose a zero pad.
w.case('maxPool2d/all_negative_padded', 'maxPool2d', max_pool, [randn(1, 2, 5, 5) - 10], kernel=3, stride=2, padding=1)
# NaN propagates through max pooling and is the selected index (PyTorch's rule).
nan_input = randn(1, 1, 4, 4)
nan_input[0, 0, 1, 2] = float('nan')
w.case('maxPool2d/nan_propagates', 'maxPool2d', max_pool, [const(nan_input)], kernel=2)
w.case('maxPool2d/channels_last', 'maxPool2d', max_pool,
       [Input(randn(2, 6, 5, 3), view=[{'op': 'permute', 'args': [0, 3, 1, 2]}])], kernel=2, stride=1)


def avg_pool(x, kernel, stride=None, padding=0, ceilMode=False, countIncludePad=True, divisorOverride=None):
    return F.avg_pool2d(x, kernel, stride, padding, ceil_mode=ceilMode,
                        count_include_pad=countIncludePad, divisor_override=divisorOverride)


for name, shape, args in [
    ('2x2', (2, 3, 6, 6), dict(kernel=2)),
    ('3x3_s2_p1_include_pad', (1, 2, 7, 7), dict(kernel=3, stride=2, padding=1, countIncludePad=True)),
    ('3x3_s2_p1_exclude_pad', (1, 2, 7, 7), dict(kernel=3, stride=2, padding=1, countIncludePad=False)),
    ('ceil_mode', (2, 2, 7, 5), dict(kernel=2, stride=2, ceilMode=True)),
    ('ceil_mode_p1_include_pad', (1, 2, 8, 6), dict(kernel=3, stride=2, padding=1, ceilMode=True)),
    ('ceil_mode_p1_exclude_pad', (1, 2, 8, 6), dict(kernel=3, stride=2, padding=1, ceilMode=True, countIncludePad=False)),
    ('divisor_override', (1, 3, 6, 5), dict(kernel=[3, 2], stride=[1, 2], divisorOverride=3)),
    ('divisor_override_pad', (1, 2, 5, 5), dict(kernel=3, stride=2, padding=1, divisorOverride=5)),
    ('overlap_s1', (2, 2, 5, 4), dict(kernel=3, stride=1)),
]:
    w.case(f'avgPool2d/{name}', 'avgPool2d', avg_pool, [randn(*shape)], **args)
w.case('avgPool2d/unbatched_3d', 'avgPool2d', avg_pool, [randn(2, 5, 4)], kernel=2)
w.case('avgPool2d/strided_input', 'avgPool2d', avg_pool,
       [Input(randn(1, 2, 6, 10), view=[{'op': 'slice', 'args': [3, 1, 10, 2]}])], kernel=2, stride=1)


def adaptive_avg(x, outputSize):
    return F.adaptive_avg_pool2d(x, outputSize)


for name, shape, out in [
    ('1x1', (2, 3, 5, 4), 1),
    ('1x1_resnet_head', (1, 8, 2, 2), [1, 1]),
    ('2x3', (1, 2, 6, 6), [2, 3]),
    ('non_divisible', (2, 2, 7, 5), [3, 2]),
    ('larger_than_input', (1, 2, 3, 2), [5, 4]),
    ('same_size', (1, 2, 4, 3), [4, 3]),
    ('keep_height', (1, 2, 4, 6), [None, 4]),
]:
    w.case(f'adaptiveAvgPool2d/{name}', 'adaptiveAvgPool2d', adaptive_avg, [randn(*shape)], outputSize=out)

# ---------------------------------------------------------------- linear


def lin(x, wt, b=None):
    return F.linear(x, wt, b)


w.case('linear/2d', 'linear', lin, [randn(4, 7), weight(5, 7), randn(5)])
w.case('linear/nobias', 'linear', lin, [randn(3, 6), weight(4, 6)])
w.case('linear/1d', 'linear', lin, [randn(5), weight(3, 5), randn(3)])
w.case('linear/3d', 'linear', lin, [randn(2, 3, 9), weight(4, 9), randn(4)])
w.case('linear/resnet_fc', 'linear', lin, [randn(2, 512), weight(10, 512), randn(10)])
w.case('linear/transposed_input', 'linear', lin,
       [Input(randn(6, 3), view=[{'op': 'transpose', 'args': [0, 1]}]), weight(4, 6), randn(4)])

# ---------------------------------------------------------------- losses
# Inputs: logits (or log-probabilities), int class targets (or float
# probabilities), then class weights when hasWeight.


def cross_entropy(x, target, *rest, reduction='mean', labelSmoothing=0.0, ignoreIndex=-100, hasWeight=False):
    return F.cross_entropy(x, target, rest[0] if hasWeight else None, ignore_index=ignoreIndex,
                           reduction=reduction, label_smoothing=labelSmoothing)


def nll(x, target, *rest, reduction='mean', ignoreIndex=-100, hasWeight=False):
    return F.nll_loss(x, target, rest[0] if hasWeight else None, ignore_index=ignoreIndex, reduction=reduction)


def targets(n_classes, *shape, ignore=None):
    t = torch.randint(0, n_classes, shape)
    if ignore is not None:
        t.view(-1)[::3] = ignore  # every third target ignored
    return Input(t)


def class_weights(c):
    return const(torch.rand(c) + 0.5)


for red in ['mean', 'sum', 'none']:
    w.case(f'crossEntropy/{red}', 'crossEntropy', cross_entropy, [randn(6, 5), targets(5, 6)], reduction=red)
    w.case(f'crossEntropy/{red}_weighted', 'crossEntropy', cross_entropy,
           [randn(6, 5), targets(5, 6), class_weights(5)], reduction=red, hasWeight=True)
    w.case(f'crossEntropy/{red}_ignore', 'crossEntropy', cross_entropy,
           [randn(7, 4), targets(4, 7, ignore=-100)], reduction=red)
    w.case(f'crossEntropy/{red}_smoothing', 'crossEntropy', cross_entropy,
           [randn(5, 6), targets(6, 5)], reduction=red, labelSmoothing=0.1)
    w.case(f'crossEntropy/{red}_all_combined', 'crossEntropy', cross_entropy,
           [randn(8, 5), targets(5, 8, ignore=2), class_weights(5)],
           reduction=red, labelSmoothing=0.2, ignoreIndex=2, hasWeight=True)
    w.case(f'crossEntropy/{red}_4d', 'crossEntropy', cross_entropy,
           [randn(2, 4, 3, 3), targets(4, 2, 3, 3)], reduction=red)
    w.case(f'crossEntropy/{red}_4d_combined', 'crossEntropy', cross_entropy,
           [randn(2, 3, 2, 4), targets(3, 2, 2, 4, ignore=-1), class_weights(3)],
           reduction=red, labelSmoothing=0.05, ignoreIndex=-1, hasWeight=True)
    w.case(f'crossEntropy/{red}_probabilities', 'crossEntropy', cross_entropy,
           [randn(4, 5), torch.softmax(randn(4, 5), 1)], reduction=red)
    w.case(f'crossEntropy/{red}_probabilities_smoothing_weighted', 'crossEntropy', cross_entropy,
           [randn(4, 3), Input(torch.softmax(randn(4, 3), 1), requires_grad=False), class_weights(3)],
           reduction=red, labelSmoothing=0.3, hasWeight=True)
w.case('crossEntropy/mean_all_ignored', 'crossEntropy', cross_entropy, [randn(3, 4), Input(torch.full((3,), -100))])
w.case('nllLoss/unbatched', 'nllLoss', nll, [torch.log_softmax(randn(5), 0), Input(torch.tensor(2))])
w.case('crossEntropy/unbatched', 'crossEntropy', cross_entropy, [randn(5), Input(torch.tensor(3))])
w.case('crossEntropy/probabilities_4d', 'crossEntropy', cross_entropy,
       [randn(2, 3, 2, 2), torch.softmax(randn(2, 3, 2, 2), 1)])
w.case('crossEntropy/large_logits', 'crossEntropy', cross_entropy, [randn(4, 6) * 40, targets(6, 4)])

for red in ['mean', 'sum', 'none']:
    w.case(f'nllLoss/{red}', 'nllLoss', nll, [torch.log_softmax(randn(5, 4), 1), targets(4, 5)], reduction=red)
    w.case(f'nllLoss/{red}_weighted_ignore', 'nllLoss', nll,
           [torch.log_softmax(randn(7, 4), 1), targets(4, 7, ignore=1), class_weights(4)],
           reduction=red, ignoreIndex=1, hasWeight=True)
    w.case(f'nllLoss/{red}_4d', 'nllLoss', nll,
           [torch.log_softmax(randn(2, 3, 2, 3), 1), targets(3, 2, 2, 3)], reduction=red)


def mse(a, b, reduction='mean'):
    return F.mse_loss(a, b, reduction=reduction)


for red in ['mean', 'sum', 'none']:
    w.case(f'mseLoss/{red}', 'mseLoss', mse, [randn(3, 4), randn(3, 4)], reduction=red)
w.case('mseLoss/transposed', 'mseLoss', mse, [Input(randn(5, 3), view=[{'op': 'transpose', 'args': [0, 1]}]), randn(3, 5)])
w.case('mseLoss/target_no_grad', 'mseLoss', mse, [randn(2, 3, 4), const(randn(2, 3, 4))], reduction='sum')

# ---------------------------------------------------------------- error paths

w.error('conv2d/wrong_in_channels', 'conv2d', conv, [randn(1, 3, 5, 5), randn(4, 2, 3, 3)])
w.error('conv2d/groups_mismatch', 'conv2d', conv, [randn(1, 4, 5, 5), randn(4, 4, 3, 3)], groups=2)
w.error('conv2d/out_channels_not_divisible', 'conv2d', conv, [randn(1, 4, 5, 5), randn(3, 2, 3, 3)], groups=2)
w.error('conv2d/kernel_larger_than_input', 'conv2d', conv, [randn(1, 2, 3, 3), randn(2, 2, 5, 5)])
w.error('conv2d/weight_3d', 'conv2d', conv, [randn(1, 2, 5, 5), randn(2, 2, 3)])
w.error('conv2d/input_2d', 'conv2d', conv, [randn(5, 5), randn(2, 1, 3, 3)])
w.error('conv2d/bias_size', 'conv2d', conv, [randn(1, 2, 5, 5), randn(3, 2, 3, 3), randn(4)])
w.error('conv2d/negative_padding', 'conv2d', conv, [randn(1, 2, 5, 5), randn(3, 2, 3, 3)], padding=-1)
w.error('conv2d/zero_stride', 'conv2d', conv, [randn(1, 2, 5, 5), randn(3, 2, 3, 3)], stride=0)
w.error('conv2d/same_with_stride', 'conv2d', conv, [randn(1, 2, 5, 5), randn(3, 2, 3, 3)], padding='same', stride=2)
w.error('batchNorm/weight_channels', 'batchNorm', batch_norm,
        [randn(2, 3, 4, 4), randn(4), randn(4), randn(3), torch.rand(3)], affine=True, training=True)
w.error('batchNorm/running_mean_channels', 'batchNorm', batch_norm,
        [randn(2, 3, 4, 4), randn(2), torch.rand(2)], affine=False, training=False)
w.error('batchNorm/one_value_per_channel', 'batchNorm', batch_norm, [randn(1, 3)], affine=False, tracked=False, training=True)
w.error('maxPool2d/padding_over_half_kernel', 'maxPool2d', max_pool, [randn(1, 1, 6, 6)], kernel=2, padding=2)
w.error('maxPool2d/kernel_larger_than_input', 'maxPool2d', max_pool, [randn(1, 1, 3, 3)], kernel=5)
w.error('maxPool2d/zero_stride', 'maxPool2d', max_pool, [randn(1, 1, 4, 4)], kernel=2, stride=0)
w.error('avgPool2d/padding_over_half_kernel', 'avgPool2d', avg_pool, [randn(1, 1, 6, 6)], kernel=3, padding=2)
w.error('avgPool2d/divisor_zero', 'avgPool2d', avg_pool, [randn(1, 1, 6, 6)], kernel=2, divisorOverride=0)
w.error('adaptiveAvgPool2d/input_2d', 'adaptiveAvgPool2d', adaptive_avg, [randn(4, 4)], outputSize=2)
w.error('linear/in_features', 'linear', lin, [randn(3, 4), randn(5, 6)])
w.error('linear/bias_size', 'linear', lin, [randn(3, 4), randn(5, 4), randn(3)])
w.error('crossEntropy/target_batch_size', 'crossEntropy', cross_entropy, [randn(3, 5), Input(torch.randint(0, 5, (4,)))])
w.error('crossEntropy/target_4d_shape', 'crossEntropy', cross_entropy, [randn(2, 3, 4, 4), Input(torch.randint(0, 3, (2, 4, 3)))])
w.error('crossEntropy/probabilities_shape', 'crossEntropy', cross_entropy, [randn(3, 5), torch.rand(3, 4)])
w.error('crossEntropy/weight_size', 'crossEntropy', cross_entropy,
        [randn(3, 5), Input(torch.randint(0, 5, (3,))), randn(4)], hasWeight=True)
w.error('nllLoss/float_target', 'nllLoss', nll, [randn(3, 5), torch.rand(3)])
w.error('nllLoss/target_shape', 'nllLoss', nll, [randn(3, 5), Input(torch.randint(0, 5, (3, 1)))])
w.error('nllLoss/weight_size', 'nllLoss', nll, [randn(3, 5), Input(torch.randint(0, 5, (3,))), randn(6)], hasWeight=True)
w.error('mseLoss/broadcast_mismatch', 'mseLoss', mse, [randn(3, 4), randn(5)])

w.save()
