"""PyTorch peer of the Kiln benchmark suite (benchmarks/), run by /usr/bin/python3.

Named bench_*.py so setup's gen_*.py reference runner leaves it alone.

    bench_torch.py prepare OUTDIR   seeded torchvision ResNet18 -> OUTDIR:
        weights.bin + weights.json  every state-dict float tensor (float32 LE,
                                    torchvision names, offsets in elements)
        input.bin                   [8, 3, 224, 224] seeded input
        logits.bin                  eval logits of that input [8, 1000]
        resnet18.onnx               torch.onnx.export of the same model
        meta.json                   versions, shapes, labels, first-step loss
    bench_torch.py serve OUTDIR     reads one JSON case per stdin line, times
                                    it and answers one JSON line on stdout
                                    (kinds: gemm, conv, batchnorm, pools,
                                    resnet_forward, resnet_train, and
                                    resnet_quantized_forward: torchvision's
                                    quantized resnet18 on onednn).

The BatchNorm running statistics are calibrated on random batches (a
cumulative average in train mode) rather than left at 0/1, so folding BN
into the convolutions is exercised with real numbers and activations keep a
sane scale through 18 layers.
"""

import copy
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F
import torchvision

INPUT_SHAPE = [8, 3, 224, 224]
NUM_CLASSES = 1000
SGD_LR = 0.01


def build_model():
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=NUM_CLASSES)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.1)
                m.momentum = None  # cumulative average over the calibration batches
        model.train()
        for _ in range(2):
            model(torch.randn(INPUT_SHAPE))
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.momentum = 0.1
                m.num_batches_tracked.zero_()
    return model.eval()


def float_state(model):
    return [(k, v) for k, v in model.state_dict().items() if v.dtype == torch.float32]


def prepare(outdir):
    os.makedirs(outdir, exist_ok=True)
    model = build_model()
    manifest, offset = [], 0
    with open(os.path.join(outdir, 'weights.bin'), 'wb') as f:
        for name, t in float_state(model):
            data = t.detach().contiguous().numpy().astype('<f4')
            f.write(data.tobytes())
            manifest.append({'name': name, 'shape': list(t.shape), 'offset': offset})
            offset += data.size
    with open(os.path.join(outdir, 'weights.json'), 'w') as f:
        json.dump({'tensors': manifest, 'numel': offset}, f)

    torch.manual_seed(1)
    x = torch.randn(INPUT_SHAPE)
    labels = torch.randint(0, NUM_CLASSES, (INPUT_SHAPE[0],))
    x.numpy().astype('<f4').tofile(os.path.join(outdir, 'input.bin'))
    with torch.no_grad():
        logits = model(x)
    logits.numpy().astype('<f4').tofile(os.path.join(outdir, 'logits.bin'))

    # The loss of one training step from these weights: Kiln's step must match it.
    train = copy.deepcopy(model).train()
    loss = F.cross_entropy(train(x), labels)

    torch.onnx.export(model, x[:1], os.path.join(outdir, 'resnet18.onnx'), input_names=['input'],
                      output_names=['logits'], dynamic_axes={'input': {0: 'N'}, 'logits': {0: 'N'}},
                      opset_version=13, do_constant_folding=True)
    meta = {'torch': torch.__version__, 'torchvision': torchvision.__version__, 'inputShape': INPUT_SHAPE,
            'labels': labels.tolist(), 'trainLoss': loss.item(), 'sgdLr': SGD_LR}
    with open(os.path.join(outdir, 'meta.json'), 'w') as f:
        json.dump(meta, f)


def load_model(outdir):
    model = torchvision.models.resnet18(num_classes=NUM_CLASSES)
    with open(os.path.join(outdir, 'weights.json')) as f:
        manifest = json.load(f)['tensors']
    flat = torch.from_numpy(__import__('numpy').fromfile(os.path.join(outdir, 'weights.bin'), dtype='<f4'))
    state = model.state_dict()
    for e in manifest:
        n = 1
        for s in e['shape']:
            n *= s
        state[e['name']] = flat[e['offset']:e['offset'] + n].reshape(e['shape']).clone()
    model.load_state_dict(state)
    return model.eval()


def timed(fn, case):
    """Median ms of fn() after warm-up: at least minRuns, more while under budgetMs, at most
    maxRuns; fewer (at least one) when warm-up says minRuns would take over capMs."""
    warm_ms = 0.0
    for _ in range(case.get('warmup', 1)):
        t = time.perf_counter()
        fn()
        warm_ms = (time.perf_counter() - t) * 1000
    max_runs = case.get('maxRuns', 10)
    cap = case.get('capMs', float('inf'))
    if warm_ms * case.get('minRuns', 3) > cap:
        max_runs = max(1, int(cap // max(warm_ms, 1)))
    min_runs = min(case.get('minRuns', 3), max_runs)
    times, start = [], time.perf_counter()
    while len(times) < max_runs:
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
        if len(times) >= min_runs and (time.perf_counter() - start) * 1000 >= case.get('budgetMs', 0):
            break
    return {'ms': round(statistics.median(times), 4), 'minMs': round(min(times), 4), 'runs': len(times)}


def conv_case(case):
    N, C, H, W, O, k, s, p = (case[key] for key in ('N', 'C', 'H', 'W', 'O', 'k', 's', 'p'))
    x = torch.randn(N, C, H, W)
    w = torch.randn(O, C, k, k)
    oh = (H + 2 * p - k) // s + 1
    ow = (W + 2 * p - k) // s + 1
    dy = torch.randn(N, O, oh, ow)
    bwd = torch.ops.aten.convolution_backward
    if case['dir'] == 'forward':
        return lambda: F.conv2d(x, w, None, s, p)
    if case['dir'] == 'input_grad':
        return lambda: bwd(dy, x, w, None, [s, s], [p, p], [1, 1], False, [0, 0], 1, [True, False, False])
    return lambda: bwd(dy, x, w, None, [s, s], [p, p], [1, 1], False, [0, 0], 1, [False, True, False])


def batchnorm_case(case):
    x = torch.randn(case['N'], case['C'], case['H'], case['W'], requires_grad=True)
    gamma = torch.ones(case['C'], requires_grad=True)
    beta = torch.zeros(case['C'], requires_grad=True)
    rm, rv = torch.zeros(case['C']), torch.ones(case['C'])
    dy = torch.randn(x.shape)

    def step():
        y = F.batch_norm(x, rm, rv, gamma, beta, training=True)
        torch.autograd.backward(y, dy)
    return step


def quantized_model(model, calib):
    """torchvision's quantizable resnet18 with `model`'s weights, statically
    quantized as Kiln's quant suite does it: fuse_model(), MinMax quint8
    activations with reduce_range, per-channel symmetric qint8 weights,
    calibrated on `calib`, converted. Engine onednn (Debian's torch has no
    fbgemm; onednn is its x86 int8 engine)."""
    from torch.ao.quantization import QConfig, MinMaxObserver, PerChannelMinMaxObserver
    from torchvision.models.quantization import resnet18 as quantizable_resnet18
    torch.backends.quantized.engine = 'onednn'
    q = quantizable_resnet18(weights=None, quantize=False, num_classes=NUM_CLASSES)
    q.load_state_dict(model.state_dict())
    q.eval()
    q.fuse_model()
    q.qconfig = QConfig(activation=MinMaxObserver.with_args(dtype=torch.quint8, reduce_range=True),
                        weight=PerChannelMinMaxObserver.with_args(dtype=torch.qint8, qscheme=torch.per_channel_symmetric))
    torch.ao.quantization.prepare(q, inplace=True)
    with torch.no_grad():
        q(calib)
    return torch.ao.quantization.convert(q, inplace=True)


class Peer:
    def __init__(self, outdir):
        self.outdir = outdir
        self.model = None
        self.data = None
        self.qmodel = None

    def assets(self):
        if self.model is None:
            import numpy
            self.model = load_model(self.outdir)
            with open(os.path.join(self.outdir, 'meta.json')) as f:
                meta = json.load(f)
            x = torch.from_numpy(numpy.fromfile(os.path.join(self.outdir, 'input.bin'), dtype='<f4')).reshape(meta['inputShape'])
            self.data = (x, torch.tensor(meta['labels']), meta['sgdLr'])
        return self.model, self.data

    def build(self, case):
        kind = case['kind']
        if kind == 'gemm':
            a, b = torch.randn(case['n'], case['n']), torch.randn(case['n'], case['n'])
            return lambda: a @ b
        if kind == 'conv':
            return conv_case(case)
        if kind == 'batchnorm':
            return batchnorm_case(case)
        if kind == 'maxpool':
            x = torch.randn(case['N'], case['C'], case['H'], case['W'])
            return lambda: F.max_pool2d(x, 3, 2, 1)
        if kind == 'adaptive_avgpool':
            x = torch.randn(case['N'], case['C'], case['H'], case['W'])
            return lambda: F.adaptive_avg_pool2d(x, 1)
        model, (x, labels, lr) = self.assets()
        xb, yb = x[:case['batch']].contiguous(), labels[:case['batch']]
        if kind == 'resnet_forward':
            def forward():
                with torch.no_grad():
                    return model(xb)
            return forward
        if kind == 'resnet_quantized_forward':
            if self.qmodel is None:
                self.qmodel = quantized_model(copy.deepcopy(model), x[:2].contiguous())
            qmodel = self.qmodel

            def qforward():
                with torch.no_grad():
                    return qmodel(xb)
            return qforward
        if kind == 'resnet_train':
            train = copy.deepcopy(model).train()
            params = list(train.parameters())

            def step():
                for p in params:
                    p.grad = None
                loss = F.cross_entropy(train(xb), yb)
                loss.backward()
                with torch.no_grad():
                    for p in params:
                        p.sub_(p.grad, alpha=lr)
            return step
        raise ValueError(f'unknown case kind {kind!r}')


def serve(outdir):
    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(0)
    peer = Peer(outdir)
    hello = {'ready': True, 'torch': torch.__version__, 'torchvision': torchvision.__version__,
             'threads': torch.get_num_threads(), 'blas': blas_name()}
    print(json.dumps(hello), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        case = json.loads(line)
        try:
            with torch.no_grad() if case['kind'] not in ('batchnorm', 'resnet_train') else torch.enable_grad():
                result = timed(peer.build(case), case)
            result['id'] = case['id']
        except Exception as e:  # report, keep serving
            result = {'id': case['id'], 'error': f'{type(e).__name__}: {e}'}
        print(json.dumps(result), flush=True)


def blas_name():
    """The BLAS torch.mm really runs on: what the process has mapped after one
    matmul (Debian's torch links the generic libblas.so.3, which the
    alternatives system points at OpenBLAS or the netlib reference), else
    what torch was built with."""
    torch.mm(torch.ones(64, 64), torch.ones(64, 64))
    try:
        with open('/proc/self/maps') as f:
            libs = {line.split()[-1] for line in f if '.so' in line}
        for lib in sorted(libs):
            base = os.path.basename(lib)
            if 'openblas' in lib or base.startswith(('libblas', 'libmkl', 'libblis')):
                real = os.path.realpath(lib)
                kind = 'OpenBLAS' if 'openblas' in real else 'MKL' if 'mkl' in real else 'BLIS' if 'blis' in real else 'netlib reference BLAS'
                return f'{kind} ({real})'
    except OSError:
        pass
    config = torch.__config__.show()
    for name in ('MKL', 'OpenBLAS', 'BLIS'):
        if f'BLAS_INFO={name.lower()}' in config.replace(' ', '').lower() or f'USE_{name.upper()}=ON' in config:
            return name
    return 'unknown'


if __name__ == '__main__':
    if len(sys.argv) != 3 or sys.argv[1] not in ('prepare', 'serve'):
        sys.exit(__doc__)
    (prepare if sys.argv[1] == 'prepare' else serve)(sys.argv[2])
