"""Reference files for @kiln/resnet's weight loaders and image preprocessing.

Run with Debian's interpreter (torch 1.13, torchvision 0.14, PIL):

    KILN_REFERENCE_DIR=tests/.cache/reference /usr/bin/python3 tests/reference/gen_resnet_io.py
    /usr/bin/python3 tests/reference/gen_resnet_io.py OUTDIR      (what scripts/setup.mjs does)

The first form writes into $KILN_REFERENCE_DIR/resnet_io/, the second into
OUTDIR itself. Layout of that folder:

    weights/   .pth files written by torch.save, .safetensors written by hand
               (the safetensors package is not in Debian), expected.json
    images/    PNG/JPEG inputs, index.json, and per image: the decoded RGB,
               the Resize(256) output, the eval-transform tensor (raw bytes)
    hostile/   files a loader must reject (see resnet_io_hostile.py)

Everything here is written by PyTorch/PIL themselves; tests never compare
against hand-typed numbers. ~57 MB, 47 of it the one full resnet18.
"""

import collections
import hashlib
import json
import os
import struct
import sys

import numpy as np
import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import resnet_io_hostile  # noqa: E402
import resnet_io_images  # noqa: E402

# safetensors dtype names, and the Rust crate's Dtype enum order, which its
# serializer sorts by (descending) so the largest alignments come first.
ST_DTYPES = {
    torch.bool: 'BOOL', torch.uint8: 'U8', torch.int8: 'I8', torch.int16: 'I16',
    torch.float16: 'F16', torch.bfloat16: 'BF16', torch.int32: 'I32',
    torch.float32: 'F32', torch.float64: 'F64', torch.int64: 'I64',
}
ST_ORDER = ['BOOL', 'U8', 'I8', 'F8_E5M2', 'F8_E4M3', 'I16', 'U16', 'F16', 'BF16',
            'I32', 'U32', 'F32', 'F64', 'I64', 'U64']

# Subset of resnet18 keys for the smaller copies (fp16 .pth, safetensors):
# stem + layer1 covers conv, bn (incl. int64 num_batches_tracked) and
# downsample-free blocks; layer2.0 adds a downsample branch. (fc would add
# 2 MB per copy; the full file covers it.)
SUBSET_PREFIXES = ('conv1.', 'bn1.', 'layer1.', 'layer2.0.')


def raw_bytes(t):
    """Little-endian bytes of a tensor's contiguous values, in its own dtype."""
    t = t.detach().contiguous()
    if t.dtype in (torch.bfloat16, torch.float16):
        return t.view(torch.int16).numpy().astype('<i2').tobytes()
    arr = t.numpy()
    return arr.astype(arr.dtype.newbyteorder('<')).tobytes()


def expected_record(t):
    """What a test checks per tensor: exact bytes (as sha256) in the file's dtype
    and in the dtype Kiln widens it to by default, plus a few readable values."""
    t = t.detach()
    rec = {
        'shape': list(t.shape),
        'dtype': str(t.dtype).replace('torch.', ''),
        'sha256': hashlib.sha256(raw_bytes(t)).hexdigest(),
    }
    if t.is_floating_point():
        wide = t.float()
    elif t.dtype in (torch.int64, torch.int16):
        info = torch.iinfo(torch.int32)
        wide = t.int() if t.numel() == 0 or (t.long().min() >= info.min and t.long().max() <= info.max) else None
    else:
        wide = t
    if wide is not None:
        rec['sha256Widened'] = hashlib.sha256(raw_bytes(wide)).hexdigest()
        flat = wide.reshape(-1)
        rec['head'] = [v if isinstance(v, int) else float(v) for v in flat[:8].tolist()]
        rec['sum'] = float(flat.double().sum()) if flat.numel() else 0.0
    return rec


def write_safetensors(path, tensors, metadata=None):
    """A safetensors file laid out byte for byte like the Rust crate writes it:
    tensors sorted by dtype (descending enum order) then name, header JSON
    compact, padded with spaces to a multiple of 8 bytes."""
    items = sorted(tensors.items(), key=lambda kv: (-ST_ORDER.index(ST_DTYPES[kv[1].dtype]), kv[0]))
    header, blobs, offset = {}, [], 0
    if metadata:
        header['__metadata__'] = metadata
    for name, t in items:
        b = raw_bytes(t)
        header[name] = {'dtype': ST_DTYPES[t.dtype], 'shape': list(t.shape),
                        'data_offsets': [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    text = json.dumps(header, separators=(',', ':')).encode()
    text += b' ' * ((8 - len(text) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def dtype_zoo():
    """One small tensor per dtype a state dict or safetensors file may hold."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 5, generator=g)
    return collections.OrderedDict([
        ('f32', x),
        ('f64', x.double() * 1e-3),
        ('f16', (x * 100).half()),
        ('bf16', (x * 100).bfloat16()),
        ('i64', torch.tensor([[0, -1, 2 ** 31 - 1], [-2 ** 31, 7, 42]])),
        ('i32', torch.arange(-6, 6, dtype=torch.int32).reshape(3, 4)),
        ('i16', torch.tensor([-32768, -1, 0, 32767], dtype=torch.int16)),
        ('i8', torch.tensor([-128, -1, 0, 127], dtype=torch.int8)),
        ('u8', torch.tensor([0, 1, 128, 255], dtype=torch.uint8)),
        ('bool', torch.tensor([True, False, True])),
        ('scalar', torch.tensor(3.5)),
        ('empty', torch.zeros(0, 4)),
    ])


def views_case():
    """Tensors that share one storage, at offsets and with odd strides: what
    torch.save writes for views (it saves the whole storage once)."""
    t = torch.arange(24, dtype=torch.float32).reshape(4, 6) * 0.5
    h = torch.linspace(-2, 2, 12).half().reshape(3, 4)
    return {
        'a': t,                       # contiguous base
        'b': t[:, 1],                 # stride (6,), offset 1
        'c': t.t(),                   # transposed: stride (1, 6)
        'd': t[1:, 2:],               # offset 8, stride (6, 1)
        'e': t[::2, ::3],             # stride (12, 3)
        'f': t[2, 3],                 # 0-d view, offset 15
        'g': t[0].expand(3, 6),       # stride 0
        'h': h,                       # fp16 storage
        'i': h[:, 1:3].t(),           # strided view of the fp16 storage
        'list': [t[3], 7, 'x'],       # non-tensor values come through as plain data
    }


def weights(out):
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    model = torchvision.models.resnet18()
    sd = model.state_dict()
    expected = {}

    # The full model: an OrderedDict with `_metadata`, exactly the layout of
    # torchvision's published resnet18-f37072fd.pth. The archive's top folder
    # is the file's stem ('resnet18'); the BytesIO-style 'archive/' prefix is
    # covered by the smaller files below.
    torch.save(sd, os.path.join(out, 'resnet18.pth'))
    expected['resnet18.pth'] = {k: expected_record(v) for k, v in sd.items()}

    subset = collections.OrderedDict((k, v) for k, v in sd.items() if k.startswith(SUBSET_PREFIXES))
    half = collections.OrderedDict((k, v.half() if v.is_floating_point() else v) for k, v in subset.items())
    with open(os.path.join(out, 'resnet18_subset_fp16.pth'), 'wb') as f:
        torch.save(half, f)  # a file object: prefix 'archive/'
    expected['resnet18_subset_fp16.pth'] = {k: expected_record(v) for k, v in half.items()}

    write_safetensors(os.path.join(out, 'resnet18_subset.safetensors'), subset,
                      {'format': 'pt', 'source': 'torchvision.models.resnet18, torch.manual_seed(0)'})
    expected['resnet18_subset.safetensors'] = {k: expected_record(v) for k, v in subset.items()}

    zoo = dtype_zoo()
    torch.save(zoo, os.path.join(out, 'dtypes.pth'))
    write_safetensors(os.path.join(out, 'dtypes.safetensors'), zoo)
    expected['dtypes.pth'] = expected['dtypes.safetensors'] = {k: expected_record(v) for k, v in zoo.items()}

    big = {'big': torch.tensor([2 ** 40, -5])}
    torch.save(big, os.path.join(out, 'int64_big.pth'))
    expected['int64_big.pth'] = {k: expected_record(v) for k, v in big.items()}

    views = views_case()
    torch.save(views, os.path.join(out, 'views.pth'))
    expected['views.pth'] = {k: expected_record(v) for k, v in views.items() if torch.is_tensor(v)}
    expected['views.pth']['list'] = {'value': [expected_record(views['list'][0]), 7, 'x']}

    # Pre-1.6 format: Kiln rejects it with a message saying how to convert.
    torch.save(zoo, os.path.join(out, 'legacy.pth'), _use_new_zipfile_serialization=False)

    with open(os.path.join(out, 'expected.json'), 'w') as f:
        json.dump({'torch': torch.__version__, 'files': expected}, f, indent=1)


def main():
    if len(sys.argv) == 2:
        out = sys.argv[1]
    elif len(sys.argv) == 1:
        out = os.path.join(os.environ.get('KILN_REFERENCE_DIR', 'tests/.cache/reference'), 'resnet_io')
    else:
        sys.exit('usage: gen_resnet_io.py [OUTDIR]')
    weights(os.path.join(out, 'weights'))
    resnet_io_images.generate(os.path.join(out, 'images'))
    resnet_io_hostile.generate(os.path.join(out, 'hostile'))
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(out) for f in fs)
    print(f'gen_resnet_io.py: wrote {out} ({total / 1e6:.1f} MB)')


if __name__ == '__main__':
    main()
