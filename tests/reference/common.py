"""Shared machinery for the PyTorch reference generators (gen_*.py).

A generator builds cases with a `Writer` and calls `save()`. The output, read
by tests/helpers/reference.ts, is `<outdir>/<name>.json`:

    {"format": 1, "generator": "gen_ops.py", "torch": "1.13.1",
     "cases":  [Case, ...],
     "errors": [ErrorCase, ...]}

    Case      = {name, op, args, inputs: [Input], outputs: [Tensor],
                 gradOutputs: [Tensor | null], grads: [Tensor | null]}
    Input     = Tensor + {view?: [{op, args}], requiresGrad}
    ErrorCase = {name, op, args, inputs: [{shape, dtype}], torchError}
    Tensor    = {shape, dtype, data: [number | "NaN" | "Infinity" | "-Infinity"]}
              | {shape, dtype, bin: {file, offset, length}}   (large tensors)

Every value is what PyTorch computed, in Kiln's dtype: float32 numbers are
written as the exact double of the float32 (Python floats round-trip through
JSON), int64 results (indices, integer sums) become int32, Kiln's index type.

An Input's `data` is its contiguous *base*; `view` lists the view ops the
test applies to the base before the op, which is how non-contiguous operands
are described. `grads` are d(sum_i outputs[i] * gradOutputs[i]) / d base,
so they also check the backward of the view ops.
"""

import json
import math
import os
import sys

import numpy as np
import torch

FORMAT = 1
# Tensors with more elements than this go to a binary side file; JSON text
# costs ~18 bytes per float32, raw bytes 4.
INLINE_LIMIT = 4096

KILN_DTYPES = {
    torch.float32: ('float32', np.float32),
    torch.int64: ('int32', np.int32),
    torch.int32: ('int32', np.int32),
    torch.int8: ('int8', np.int8),
    torch.uint8: ('uint8', np.uint8),
    torch.bool: ('bool', np.uint8),
}


def seed(n=0):
    """Seeds every RNG a generator might touch, so its outputs are reproducible."""
    torch.manual_seed(n)
    np.random.seed(n)


def apply_view(t, view):
    """Applies a list of view steps; the TS side maps the same names to Kiln calls."""
    for step in view or []:
        op, args = step['op'], step['args']
        if op == 'transpose':
            t = t.transpose(*args)
        elif op == 'permute':
            t = t.permute(*args)
        elif op == 'slice':
            dim, start, end, stride = args
            index = [slice(None)] * t.dim()
            index[dim] = slice(start, end, stride)
            t = t[tuple(index)]
        elif op == 'expand':
            t = t.expand(*args)
        else:
            raise ValueError(f'unknown view op {op}')
    return t


class Input:
    """One operand: a base tensor, an optional view of it, and whether it needs a gradient."""

    def __init__(self, base, view=None, requires_grad=None):
        self.base = base.detach().clone()
        self.view = view
        self.requires_grad = base.is_floating_point() if requires_grad is None else requires_grad


def as_input(x):
    return x if isinstance(x, Input) else Input(x)


class Writer:
    def __init__(self, generator, outdir):
        self.generator = os.path.basename(generator)
        self.name = self.generator[len('gen_'):-len('.py')]
        self.outdir = outdir
        self.cases = []
        self.errors = []
        self.names = set()
        self.bin = bytearray()

    # ---- encoding ----
    def tensor(self, t):
        t = t.detach()
        kiln_dtype, np_dtype = KILN_DTYPES[t.dtype]
        if t.dtype == torch.int64:
            info = np.iinfo(np.int32)
            if t.numel() and (t.min() < info.min or t.max() > info.max):
                raise ValueError('int64 value does not fit Kiln int32')
        arr = t.contiguous().numpy().astype(np_dtype).reshape(-1)
        record = {'shape': list(t.shape), 'dtype': kiln_dtype}
        if arr.size > INLINE_LIMIT:
            while len(self.bin) % 8:  # keep typed-array views aligned
                self.bin.append(0)
            record['bin'] = {'file': f'{self.name}.bin', 'offset': len(self.bin), 'length': int(arr.size)}
            self.bin += arr.astype(arr.dtype.newbyteorder('<')).tobytes()
        else:
            record['data'] = [encode_number(v) for v in arr.tolist()]
        return record

    def input(self, inp):
        record = self.tensor(inp.base)
        if inp.view:
            record['view'] = inp.view
        record['requiresGrad'] = bool(inp.requires_grad)
        return record

    # ---- cases ----
    def case(self, name, op, fn, inputs, **args):
        """Runs `fn(*views, **args)` in PyTorch and records inputs, outputs and input gradients."""
        if name in self.names:
            raise ValueError(f'duplicate case name {name}')
        self.names.add(name)
        inputs = [as_input(x) for x in inputs]
        leaves = [x.base.clone().requires_grad_(x.requires_grad) for x in inputs]
        views = [apply_view(leaf, x.view) for leaf, x in zip(leaves, inputs)]
        out = fn(*views, **args)
        outs = list(out) if isinstance(out, (tuple, list)) else [out]

        diff_outs = [o for o in outs if o.requires_grad]
        gouts = [torch.randn(o.shape) if o.requires_grad else None for o in outs]
        wrt = [leaf for leaf in leaves if leaf.requires_grad]
        grads = [None] * len(leaves)
        if diff_outs and wrt:
            got = torch.autograd.grad(diff_outs, wrt, [g for g in gouts if g is not None], allow_unused=True)
            it = iter(got)
            for i, leaf in enumerate(leaves):
                if leaf.requires_grad:
                    g = next(it)
                    # An input the output does not depend on has a zero gradient in Kiln's convention.
                    grads[i] = torch.zeros_like(leaf) if g is None else g
        else:
            gouts = [None] * len(outs)

        self.cases.append({
            'name': name,
            'op': op,
            'args': args,
            'inputs': [self.input(x) for x in inputs],
            'outputs': [self.tensor(o) for o in outs],
            'gradOutputs': [None if g is None else self.tensor(g) for g in gouts],
            'grads': [None if g is None else self.tensor(g) for g in grads],
        })

    def error(self, name, op, fn, inputs, **args):
        """Records a call PyTorch rejects; Kiln must reject it too, with an error naming the op."""
        inputs = [as_input(x) for x in inputs]
        try:
            fn(*[apply_view(x.base, x.view) for x in inputs], **args)
        except (RuntimeError, IndexError, ValueError, TypeError) as e:
            message = str(e).split('\n')[0]
        else:
            raise AssertionError(f'error case {name}: PyTorch accepted it')
        self.errors.append({
            'name': name,
            'op': op,
            'args': args,
            'inputs': [{'shape': list(x.base.shape), 'dtype': KILN_DTYPES[x.base.dtype][0],
                        **({'view': x.view} if x.view else {})} for x in inputs],
            'torchError': message,
        })

    def save(self):
        doc = {'format': FORMAT, 'generator': self.generator, 'torch': torch.__version__,
               'cases': self.cases, 'errors': self.errors}
        with open(os.path.join(self.outdir, f'{self.name}.json'), 'w') as f:
            json.dump(doc, f, separators=(',', ':'), allow_nan=False)
        if self.bin:
            with open(os.path.join(self.outdir, f'{self.name}.bin'), 'wb') as f:
                f.write(self.bin)
        print(f'{self.generator}: {len(self.cases)} cases, {len(self.errors)} error cases')


def encode_number(v):
    """JSON has no NaN/Infinity: those travel as strings."""
    if isinstance(v, float) and not math.isfinite(v):
        return 'NaN' if math.isnan(v) else ('Infinity' if v > 0 else '-Infinity')
    return v


def writer_from_argv(generator_file):
    """The Writer for `python3 gen_x.py OUTDIR` (setup.mjs passes OUTDIR)."""
    if len(sys.argv) != 2:
        sys.exit(f'usage: {os.path.basename(generator_file)} OUTDIR')
    os.makedirs(sys.argv[1], exist_ok=True)
    return Writer(generator_file, sys.argv[1])
