"""Weight files @kiln/resnet must reject (part of gen_resnet_io.py).

index.json maps each file to the words the loader's error must contain.
The "malicious" pickles name a marker file; a test checks it never appears
(Kiln never executes anything, it refuses the GLOBAL before any call).
Nothing here is unpickled by this script either: pickle.dumps only writes.
"""

import io
import json
import os
import pickle
import struct
import zipfile

import torch

MARKER = '/tmp/kiln-resnet-io-pwned'


class SystemCall:
    def __reduce__(self):
        return (os.system, (f'touch {MARKER}',))


class EvalCall:
    def __reduce__(self):
        return (eval, (f"__import__('os').system('touch {MARKER}')",))


def torch_zip(records, prefix='archive'):
    """A zip laid out like torch.save's: stored entries under one top folder."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w', zipfile.ZIP_STORED) as z:
        for name, data in records.items():
            z.writestr(f'{prefix}/{name}', data)
    return buf.getvalue()


def small_pth():
    buf = io.BytesIO()
    torch.manual_seed(0)
    torch.save(torch.nn.Linear(2, 3).state_dict(), buf)
    return buf.getvalue()


def entries(pth):
    with zipfile.ZipFile(io.BytesIO(pth)) as z:
        return {n.split('/', 1)[1]: z.read(n) for n in z.namelist()}


class LyingPickler(pickle.Pickler):
    """torch.save's persistent_id, except it claims storages hold 2 elements,
    so the tensor views (3x2 and 3) reach past their storage."""

    def persistent_id(self, obj):
        if isinstance(obj, torch.storage.TypedStorage):
            key = str(self.keys.setdefault(obj.data_ptr(), len(self.keys)))
            self.blobs[key] = obj.cpu()
            return ('storage', torch.FloatStorage, key, 'cpu', 2)
        return None


def oob_view_pth():
    buf = io.BytesIO()
    p = LyingPickler(buf, protocol=2)
    p.keys, p.blobs = {}, {}
    torch.manual_seed(0)
    p.dump(torch.nn.Linear(2, 3).state_dict())
    records = {'data.pkl': buf.getvalue(), 'version': b'3\n'}
    for key, storage in p.blobs.items():
        records[f'data/{key}'] = bytes(torch.tensor(storage).numpy().tobytes())
    return torch_zip(records)


def safetensors(header, data=b'', length=None):
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    n = len(text) if length is None else length
    return struct.pack('<Q', n) + text + data


def generate(out):
    os.makedirs(out, exist_ok=True)
    good = small_pth()
    parts = entries(good)
    files = {
        # Code execution attempts: rejected at the GLOBAL opcode, naming it
        # (protocol 2 spells builtins the Python 2 way, '__builtin__').
        'system.pth': (torch_zip({'data.pkl': pickle.dumps(SystemCall(), protocol=2), 'version': b'3\n'}),
                       ['posix.system', 'not allowed']),
        'eval.pth': (torch_zip({'data.pkl': pickle.dumps(EvalCall(), protocol=2), 'version': b'3\n'}),
                     ['__builtin__.eval', 'not allowed']),
        # Protocol 4 spells the global with STACK_GLOBAL; the same allow-list applies.
        'system_p4.pth': (torch_zip({'data.pkl': pickle.dumps(SystemCall(), protocol=4), 'version': b'3\n'}),
                          ['posix.system', 'not allowed']),
        # Damaged archives.
        'truncated.pth': (good[: len(good) // 2], ['zip']),
        'corrupt_zip.pth': (b'PK\x03\x04' + bytes(range(256)) * 4, ['zip']),
        'not_a_zip.pth': (b'hello, this is not a weight file\n' * 4, ['not a PyTorch']),
        'no_data_pkl.pth': (torch_zip({'version': b'3\n'}), ['data.pkl']),
        'corrupt_pickle.pth': (torch_zip({**parts, 'data.pkl': parts['data.pkl'][:40] + b'\xff' * 8}),
                               ['pickle']),
        'truncated_pickle.pth': (torch_zip({**parts, 'data.pkl': parts['data.pkl'][:-30]}), ['pickle']),
        'missing_storage.pth': (torch_zip({k: v for k, v in parts.items() if k != 'data/1'}),
                                ['data/1', 'missing']),
        'short_storage.pth': (torch_zip({**parts, 'data/0': parts['data/0'][:10]}), ['storage', 'bytes']),
        'oob_view.pth': (oob_view_pth(), ['outside']),
        # safetensors
        'huge_header.safetensors': (struct.pack('<Q', 2 ** 60) + b'{}', ['header']),
        'header_past_end.safetensors': (safetensors({'a': {'dtype': 'F32', 'shape': [1], 'data_offsets': [0, 4]}},
                                                    length=4096), ['header']),
        'bad_json.safetensors': (safetensors(b'{"a": [1, 2', b''), ['JSON']),
        'oob_offsets.safetensors': (safetensors({'a': {'dtype': 'F32', 'shape': [4], 'data_offsets': [0, 16]}},
                                                b'\0' * 8), ['offset']),
        'overlap.safetensors': (safetensors({'a': {'dtype': 'F32', 'shape': [2], 'data_offsets': [0, 8]},
                                             'b': {'dtype': 'F32', 'shape': [2], 'data_offsets': [4, 12]}},
                                            b'\0' * 12), ['overlap']),
        'size_mismatch.safetensors': (safetensors({'a': {'dtype': 'F32', 'shape': [3], 'data_offsets': [0, 8]}},
                                                  b'\0' * 8), ['shape']),
        'bad_dtype.safetensors': (safetensors({'a': {'dtype': 'C64', 'shape': [1], 'data_offsets': [0, 8]}},
                                              b'\0' * 8), ['C64']),
        'trailing_data.safetensors': (safetensors({'a': {'dtype': 'U8', 'shape': [2], 'data_offsets': [0, 2]}},
                                                  b'\0' * 5), ['bytes']),
    }
    index = {'marker': MARKER, 'files': {}}
    for name, (data, words) in files.items():
        with open(os.path.join(out, name), 'wb') as f:
            f.write(data)
        index['files'][name] = words
    with open(os.path.join(out, 'index.json'), 'w') as f:
        json.dump(index, f, indent=1)
