"""PyTorch reference for HistogramObserver (tests/quant.histogram.test.ts).

torch 1.13's torch.ao.quantization.HistogramObserver (2048 bins, upsample
rate 128) observes a few seeded batches per case. Recorded after every
batch: the histogram, min_val and max_val buffers; after the last: the
min/max the non-linear L2 search settles on and calculate_qparams()'s scale
and zero point. The cases walk every branch of 1.13's forward: the first
batch (histc over int(min)..int(max), the integer-truncated bounds 1.13
passes), a first batch inside (-1, 1) (truncated bounds equal: histc falls
back to the data's range), a constant first batch (same_values: the next
batch starts over), a batch inside the recorded range (histograms added
as they are), and batches that widen it (upsample, re-grid, integrate in
double). Engine: onednn (Debian's torch has no fbgemm); the observer does
not depend on the engine.
"""
import torch
from torch.ao.quantization import HistogramObserver

from common import seed, writer_from_argv

torch.backends.quantized.engine = 'onednn'
w = writer_from_argv(__file__)
seed(0)

QSCHEMES = {'per_tensor_affine': torch.per_tensor_affine, 'per_tensor_symmetric': torch.per_tensor_symmetric}
DTYPES = {'quint8': torch.quint8, 'qint8': torch.qint8}


def tensor_in(t):
    return {**w.tensor(t.detach()), 'requiresGrad': False}


def record(name, batches, dtype='quint8', qscheme='per_tensor_affine', reduce_range=False):
    obs = HistogramObserver(dtype=DTYPES[dtype], qscheme=QSCHEMES[qscheme], reduce_range=reduce_range)
    states = []
    for b in batches:
        obs(b)
        states += [obs.histogram.clone(), obs.min_val.clone(), obs.max_val.clone()]
    new_min, new_max = obs._non_linear_param_search()
    scale, zero_point = obs.calculate_qparams()
    w.cases.append({
        'name': name, 'op': 'HistogramObserver',
        'args': {'dtype': dtype, 'qscheme': qscheme, 'reduceRange': reduce_range, 'batches': len(batches),
                 'scale': float(scale), 'zeroPoint': int(zero_point),
                 'searchMin': float(new_min), 'searchMax': float(new_max)},
        'inputs': [tensor_in(b) for b in batches],
        'outputs': [w.tensor(s) for s in states],
        'gradOutputs': [None] * len(states), 'grads': [None] * len(batches),
    })


g = torch.Generator().manual_seed(10)


def randn(*shape):
    return torch.randn(*shape, generator=g)


# Activations as the default x86 qconfig sees them: quint8, reduce_range.
record('affine_reduce_range', [
    randn(8, 512) * 2,                    # first batch
    randn(8, 512) * 3 + 1,                # widens both ends: re-grid
    randn(8, 512) * 1.5,                  # inside the range: histograms added
    torch.exp(randn(8, 512)) + 0.5,       # all positive, long tail: widens the max
], reduce_range=True)
# Post-ReLU activations: min exactly 0, the max grows batch after batch.
record('relu_growing', [torch.relu(randn(4, 1024)) * s for s in (1.5, 2.5, 4.0)])
# Symmetric qint8, first batch inside (-1, 1): truncated histc bounds are equal.
record('symmetric_small_first', [randn(16, 256) * 0.3, randn(16, 256) * 2.5], dtype='qint8', qscheme='per_tensor_symmetric')
# A constant first batch: min == max, so the next batch starts the histogram over.
record('constant_first', [torch.full((1000,), 0.75), randn(2000) * 1.2 - 0.4, randn(2000) * 0.8])
w.save()
