"""Test images for @kiln/resnet's preprocessing and what PIL + torchvision make of them.

Part of gen_resnet_io.py. index.json lists, per image: the file, PIL's mode,
and raw little-endian dumps of
  - decoded:  Image.open(f).convert('RGB') as HWC uint8 (so a test can measure
              JPEG decoder differences apart from resizing),
  - resized:  transforms.Resize(256) of that, HWC uint8,
  - tensor:   the full ImageNet eval transform, CHW float32 (only for the
              images in WITH_TENSOR, to keep the cache small; the others are
              checked through `resized`, which determines the tensor).
`augment` lists RandomResizedCrop(224) + RandomHorizontalFlip runs driven by
a scripted sequence of uniform numbers (see ScriptedTorch), with the crop
box torchvision chose and the HWC uint8 result.
"""

import json
import math
import os

import numpy as np
import torch
from PIL import Image
import torchvision.transforms as T
import torchvision.transforms.transforms as transforms_module
import torchvision.transforms.functional as F

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]


def pattern(w, h, seed):
    """Smooth gradients, fine stripes and noise: enough high frequency that a
    resize without PIL's exact antialiasing filter shows up in the numbers."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 128 + 100 * np.sin(x * 0.31) * np.cos(y * 0.17)
    g = 255 * (x + y) / (w + h)
    b = np.where(((x // 3) + (y // 3)) % 2 == 0, 200, 40) + rng.normal(0, 12, (h, w))
    return np.clip(np.stack([r, g, b], -1), 0, 255).round().astype(np.uint8)


def make_images():
    """(name, PIL image, save kwargs): modes and sizes that exercise every path."""
    rgb = lambda w, h, s: Image.fromarray(pattern(w, h, s))
    rgba = np.concatenate([pattern(150, 100, 4), pattern(150, 100, 5)[..., :1]], -1)
    return [
        ('rgb_300x200.png', rgb(300, 200, 1), {}),             # landscape
        ('rgb_199x257.png', rgb(199, 257, 2), {}),             # portrait, odd sizes
        ('rgb_64x48.png', rgb(64, 48, 3), {}),                 # upscaling
        ('rgb_256x256.png', rgb(256, 256, 6), {}),             # Resize is the identity
        ('grey_120x90.png', rgb(120, 90, 7).convert('L'), {}),
        ('greyalpha_80x100.png', Image.fromarray(rgba[:100, :80, [0, 3]], 'LA'), {}),
        ('rgba_150x100.png', Image.fromarray(rgba, 'RGBA'), {}),
        ('palette_130x170.png', rgb(130, 170, 8).quantize(colors=64), {}),
        ('bilevel_41x29.png', rgb(41, 29, 9).convert('1'), {}),
        # tRNS colour key on an RGB image: PIL's convert('RGB') keeps those pixels' colour.
        ('rgbkey_90x70.png', rgb(90, 70, 11), {'transparency': tuple(int(v) for v in pattern(90, 70, 11)[0, 0])}),
        # 16-bit grey opens as mode 'I'; convert('RGB') clips it at 255.
        ('grey16_70x50.png', Image.fromarray((pattern(70, 50, 12)[..., 1].astype(np.uint16) * 3), 'I;16'), {}),
        ('rgb_300x200.jpg', rgb(300, 200, 1), {'quality': 90}),                       # 4:2:0
        ('rgb_199x257.jpg', rgb(199, 257, 2), {'quality': 95, 'subsampling': 0}),     # 4:4:4
        ('grey_120x90.jpg', rgb(120, 90, 7).convert('L'), {'quality': 90}),
        ('progressive_160x120.jpg', rgb(160, 120, 10), {'quality': 85, 'progressive': True}),
    ]


WITH_TENSOR = {'rgb_300x200.png', 'rgb_199x257.png', 'rgb_64x48.png', 'palette_130x170.png',
               'rgb_300x200.jpg', 'grey_120x90.jpg'}


class ScriptedTorch:
    """Stands in for `torch` inside torchvision.transforms.transforms so that
    torchvision's own get_params / flip code runs on a fixed list of uniform
    numbers u in [0, 1). The mapping from u is Kiln's documented contract:
    uniform_(a, b) = a + (b - a) * u (float64), randint(lo, hi) = lo + floor(u * (hi - lo)),
    rand(1) = u."""

    def __init__(self, us):
        self.us, self.used = list(us), 0

    def next(self):
        u = self.us[self.used]
        self.used += 1
        return u

    def __getattr__(self, name):
        return getattr(torch, name)

    def empty(self, *size):
        outer = self

        class Uniform:
            def uniform_(self, a, b):
                a, b = float(a), float(b)
                return torch.tensor([a + (b - a) * outer.next()], dtype=torch.float64)
        return Uniform()

    def randint(self, low, high, size):
        return torch.tensor([low + math.floor(self.next() * (high - low))])

    def rand(self, *size):
        return torch.tensor([self.next()], dtype=torch.float64)


AUGMENT_CASES = [
    ('rgb_300x200.png', 'first-try', [0.5, 0.5, 0.3, 0.7, 0.2]),
    ('rgb_300x200.png', 'second-try', [0.999, 0.999, 0.6, 0.5, 0.25, 0.9, 0.8]),
    ('rgb_300x200.png', 'fallback-wide', [0.999, 0.999] * 10 + [0.4]),
    ('rgb_199x257.png', 'fallback-whole', [0.999, 0.0] * 10 + [0.9]),
    ('rgb_199x257.png', 'small-crop', [0.0, 0.3, 0.5, 0.5, 0.1]),
    ('rgb_64x48.png', 'upscale', [0.7, 0.6, 0.99, 0.0, 0.0]),
]


def augment(img, us):
    scripted = ScriptedTorch(us)
    real = transforms_module.torch
    transforms_module.torch = scripted
    try:
        i, j, h, w = T.RandomResizedCrop.get_params(img, [0.08, 1.0], [3 / 4, 4 / 3])
        out = F.resized_crop(img, i, j, h, w, [224, 224], T.InterpolationMode.BILINEAR)
        out = T.RandomHorizontalFlip(0.5)(out)
    finally:
        transforms_module.torch = real
    assert scripted.used == len(us), f'script has {len(us)} numbers, torchvision used {scripted.used}'
    return [i, j, h, w], out


def dump(out, name, arr):
    arr = np.ascontiguousarray(arr)
    with open(os.path.join(out, name), 'wb') as f:
        f.write(arr.astype(arr.dtype.newbyteorder('<')).tobytes())
    return {'file': name, 'shape': list(arr.shape), 'dtype': str(arr.dtype)}


def generate(out):
    os.makedirs(out, exist_ok=True)
    resize = T.Resize(256)
    eval_tail = T.Compose([T.CenterCrop(224), T.ToTensor(), T.Normalize(MEAN, STD)])
    index = {'mean': MEAN, 'std': STD, 'images': [], 'augment': []}
    for name, img, kwargs in make_images():
        path = os.path.join(out, name)
        img.save(path, **kwargs)
        loaded = Image.open(path)
        mode = loaded.mode
        rgb = loaded.convert('RGB')  # what torchvision's ImageFolder loader does
        resized = resize(rgb)
        tensor = eval_tail(resized)
        stem = name.replace('.', '_')
        record = {
            'file': name, 'mode': mode, 'width': rgb.width, 'height': rgb.height,
            'decoded': dump(out, f'{stem}.decoded.u8', np.asarray(rgb)),
            'resized': dump(out, f'{stem}.resized.u8', np.asarray(resized)),
        }
        if name in WITH_TENSOR:
            record['tensor'] = dump(out, f'{stem}.tensor.f32', tensor.numpy())
        index['images'].append(record)
    for k, (name, label, us) in enumerate(AUGMENT_CASES):
        img = Image.open(os.path.join(out, name)).convert('RGB')
        box, result = augment(img, us)
        index['augment'].append({
            'file': name, 'label': label, 'uniforms': us, 'box': box,
            'result': dump(out, f'augment_{k}.u8', np.asarray(result)),
        })
    with open(os.path.join(out, 'index.json'), 'w') as f:
        json.dump(index, f, indent=1)
