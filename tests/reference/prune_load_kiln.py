"""Loads a state dict Kiln saved from its pruned SmallNet into PyTorch's.

    /usr/bin/python3 tests/reference/prune_load_kiln.py DIR

DIR holds kiln.safetensors (Kiln's stateDict() of the pruned net) and
input.json (the input's values). The net of gen_prune.py is pruned with
prune.identity on the same tensors, so it has the pruned keys, and
load_state_dict(strict=True) must accept Kiln's file as it is. Prints JSON:
the state-dict keys and the eval output on the input. Used by
tests/prune.parity.test.ts; reads safetensors with a few lines of numpy
(Debian has no python3-safetensors).
"""

import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.utils.prune as prune

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_prune import SMALL_PRUNED, SmallNet  # noqa: E402

DTYPES = {'F32': np.float32, 'I32': np.int32, 'I64': np.int64}


def read_safetensors(path):
    with open(path, 'rb') as f:
        raw = f.read()
    n = struct.unpack('<Q', raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == '__metadata__':
            continue
        start, end = info['data_offsets']
        arr = np.frombuffer(raw[8 + n + start:8 + n + end], dtype=DTYPES[info['dtype']]).reshape(info['shape'])
        t = torch.from_numpy(arr.copy())
        out[name] = t.long() if name.endswith('num_batches_tracked') else t
    return out


def main():
    d = sys.argv[1]
    net = SmallNet()
    for mod, name in SMALL_PRUNED:
        prune.identity(getattr(net, mod), name)
    net.load_state_dict(read_safetensors(os.path.join(d, 'kiln.safetensors')), strict=True)
    net.eval()
    with open(os.path.join(d, 'input.json')) as f:
        x = torch.tensor(json.load(f), dtype=torch.float32).reshape(2, 3, 5, 5)
    with torch.no_grad():
        y = net(x)
    print(json.dumps({'keys': list(net.state_dict().keys()), 'output': y.reshape(-1).tolist()}))


if __name__ == '__main__':
    main()
