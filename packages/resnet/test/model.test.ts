// ResNet18/34's module tree, initialisation, BN folding cache and weight
// loading (parity of the numbers is in tests/resnet.parity.test.ts).
import { describe, expect, it } from 'vitest';
import { manualSeed, noGrad, randn, type Tensor } from '@kiln/core';
import { BatchNorm2d, Conv2d, Linear, Sequential } from '@kiln/nn';
import { BasicBlock, loadWeights, resnet18, resnet34, writeSafetensors, type RawTensor } from '@kiln/resnet';
import { describeResnetReference, maxAbsDiff, RESNET18_PTH } from './model.helpers.js';

const shapeDtype = (sd: Record<string, Tensor>) => Object.entries(sd).map(([k, t]) => [k, t.shape, t.dtype]);
const fromTorch = (list: [string, number[], string][]) => list.map(([k, s, d]) => [k, s, d === 'int64' ? 'int32' : d]);

describeResnetReference('state-dict keys equal torchvision', (ref) => {
  it('resnet18: keys, order, shapes (num_batches_tracked int64 there, int32 here)', () => {
    const sd = resnet18().stateDict();
    expect(shapeDtype(sd)).toEqual(fromTorch(ref.case('keys').args.resnet18));
  });

  it('resnet34: keys, order, shapes', () => {
    const sd = resnet34().stateDict();
    expect(shapeDtype(sd)).toEqual(fromTorch(ref.case('keys').args.resnet34));
  });
});

describe('resnet18 module tree', () => {
  const model = resnet18();

  it('has torchvision names: conv1, bn1, relu, maxpool, layer1-4, avgpool, fc; downsample only where the shape changes', () => {
    expect(model.namedChildren().map(([n]) => n)).toEqual(['conv1', 'bn1', 'relu', 'maxpool', 'layer1', 'layer2', 'layer3', 'layer4', 'avgpool', 'fc']);
    const names = model.namedModules().map(([n]) => n);
    expect(names).toContain('layer2.0.downsample.0');
    expect(names).toContain('layer2.0.downsample.1');
    expect(names).not.toContain('layer1.0.downsample');
    expect(names).not.toContain('layer2.1.downsample');
    expect(model.getSubmodule('layer3.1.conv2')).toBeInstanceOf(Conv2d);
    expect(model.getSubmodule('layer4.0.downsample')).toBeInstanceOf(Sequential);
  });

  it('has 11,689,512 parameters, like torchvision', () => {
    expect(model.parameters().reduce((n, p) => n + p.numel(), 0)).toBe(11_689_512);
  });

  it('prints like PyTorch', () => {
    const s = model.toString();
    expect(s).toContain('(conv1): Conv2d(3, 64, kernel_size=(7, 7), stride=(2, 2), padding=(3, 3), bias=False)');
    expect(s).toContain('(downsample): Sequential(');
    expect(s).toContain('(fc): Linear(in_features=512, out_features=1000, bias=True)');
  });

  it('initialises convs with kaiming_normal_(fan_out, relu) and BatchNorm with weight 1, bias 0', () => {
    const w = (model.getSubmodule('layer3.0.conv2') as Conv2d).weight.dataSync();
    let sq = 0;
    let sum = 0;
    for (const v of w) {
      sq += v * v;
      sum += v;
    }
    const std = Math.sqrt(sq / w.length);
    const fanOut = 256 * 3 * 3;
    expect(Math.abs(sum / w.length)).toBeLessThan(0.01 * std);
    expect(std / Math.sqrt(2 / fanOut)).toBeCloseTo(1, 1);
    for (const m of model.modules()) {
      if (!(m instanceof BatchNorm2d)) continue;
      expect([...m.weight!.dataSync()].every((v) => v === 1)).toBe(true);
      expect([...m.bias!.dataSync()].every((v) => v === 0)).toBe(true);
    }
  });

  it('zeroInitResidual zeroes every block\'s bn2.weight and nothing else; numClasses sizes fc', () => {
    const m = resnet18({ zeroInitResidual: true, numClasses: 10 });
    for (const [name, p] of m.namedParameters()) {
      if (!name.endsWith('.bn2.weight')) continue;
      expect([...p.dataSync()].every((v) => v === 0), name).toBe(true);
    }
    expect([...(m.layer1.at(0) as BasicBlock).bn1.weight!.dataSync()].every((v) => v === 1)).toBe(true);
    expect((m.fc as Linear).weight.shape).toEqual([10, 512]);
  });
});

describe('BasicBlock fused inference path', () => {
  manualSeed(3);
  const make = () => {
    const ds = new Sequential(new Conv2d(4, 8, 1, { stride: 2, bias: false }), new BatchNorm2d(8));
    const block = new BasicBlock(4, 8, 2, ds);
    noGrad(() => {
      for (const m of block.modules()) {
        if (!(m instanceof BatchNorm2d)) continue;
        m.running_mean!.copy_(randn([8]).mul(0.3));
        m.running_var!.copy_(randn([8]).abs().add(0.5));
        m.weight!.copy_(randn([8]).mul(0.2).add(1));
        m.bias!.copy_(randn([8]).mul(0.1));
      }
    });
    return block.eval();
  };
  const run = (block: BasicBlock, x: Tensor, fused: boolean) => {
    block.fuseInference = fused;
    const y = noGrad(() => block.call(x));
    const v = y.dataSync();
    y.dispose();
    return v;
  };

  it('matches the layer-by-layer path (downsample folded too)', () => {
    const block = make();
    const x = randn([2, 4, 9, 9]);
    expect(noGrad(() => block.usesFusedPath(x))).toBe(true);
    expect(maxAbsDiff(run(block, x, true), run(block, x, false))).toBeLessThan(1e-5);
  });

  it('rebuilds folded weights when a parameter or running stat changes in place, or is replaced', () => {
    const block = make();
    const x = randn([1, 4, 8, 8]);
    const before = run(block, x, true);
    noGrad(() => block.bn2.running_mean!.add_(0.5));
    const after = run(block, x, true);
    expect(maxAbsDiff(before, after)).toBeGreaterThan(1e-3);
    expect(maxAbsDiff(after, run(block, x, false))).toBeLessThan(1e-5);
    noGrad(() => block.conv1.weight.mul_(0.5));
    expect(maxAbsDiff(run(block, x, true), run(block, x, false))).toBeLessThan(1e-5);
    block.bn1.eps = 0.1;
    expect(maxAbsDiff(run(block, x, true), run(block, x, false))).toBeLessThan(1e-5);
    block.conv2 = new Conv2d(8, 8, 3, { padding: 1, bias: false });
    expect(maxAbsDiff(run(block, x, true), run(block, x, false))).toBeLessThan(1e-5);
  });

  it('is not taken in training mode or when a gradient is needed', () => {
    const block = make();
    const x = randn([1, 4, 8, 8]);
    expect(block.usesFusedPath(x)).toBe(false); // grad mode on and parameters require grad
    block.requiresGrad_(false);
    expect(block.usesFusedPath(x)).toBe(true);
    expect(block.usesFusedPath(randn([1, 4, 8, 8], { requiresGrad: true }))).toBe(false);
    block.train();
    expect(noGrad(() => block.usesFusedPath(x))).toBe(false);
  });
});

describe('loadWeights errors', () => {
  const raw = (shape: number[]): RawTensor => ({ dtype: 'float32', shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) });
  const model = resnet18({ numClasses: 10 });

  it('lists missing, unexpected and mismatched keys at once', async () => {
    const bytes = writeSafetensors({ 'fc.weight': raw([1000, 512]), 'fc.bias': raw([10]), 'head.extra': raw([3]) });
    const err = await loadWeights(model, bytes).then(() => null, (e: Error) => e);
    expect(err?.message).toMatch(/Missing key\(s\) in state_dict: "conv1\.weight", "bn1\.weight"/);
    expect(err?.message).toMatch(/Unexpected key\(s\) in state_dict: "head\.extra"/);
    expect(err?.message).toMatch(/size mismatch for fc\.weight: copying a param with shape \[1000, 512\] from checkpoint, the shape in current model is \[10, 512\]/);
  });

  it('strict: false loads what matches and reports the rest', async () => {
    const r = await loadWeights(model, writeSafetensors({ 'fc.bias': { dtype: 'float32', shape: [10], data: new Float32Array(10).fill(2) }, extra: raw([1]) }), { strict: false });
    expect(r.unexpectedKeys).toEqual(['extra']);
    expect(r.missingKeys).toContain('conv1.weight');
    expect([...(model.fc as Linear).bias!.dataSync()]).toEqual(new Array(10).fill(2));
  });

  it('rejects a file that is neither .pth nor safetensors, and a missing path, naming them', async () => {
    const model = new Linear(2, 2);
    await expect(loadWeights(model, new TextEncoder().encode('hello world, not weights'))).rejects.toThrow(/neither a PyTorch \.pth \(zip\) nor a \.safetensors file/);
    await expect(loadWeights(model, '/nonexistent/w.pth')).rejects.toThrow(/cannot read '\/nonexistent\/w\.pth': no such file/);
  });
});

describeResnetReference('loadWeights on a torch.save file', () => {
  it('loads resnet18.pth strictly; num_batches_tracked (int64 in the file) arrives as int32', async () => {
    const model = resnet18();
    const r = await loadWeights(model, RESNET18_PTH);
    expect(r).toEqual({ missingKeys: [], unexpectedKeys: [] });
    expect(model.bn1.num_batches_tracked!.dtype).toBe('int32');
  });
});

describe('folded-weight cache and set_', () => {
  it('rebuilds when a parameter is re-pointed at other memory with set_ (what Module.to does)', () => {
    manualSeed(4);
    const block = new BasicBlock(4, 4).eval();
    block.fuseInference = true;
    const x = randn([1, 4, 6, 6]);
    const out = (fused: boolean) => {
      block.fuseInference = fused;
      const y = noGrad(() => block.call(x));
      const v = y.dataSync();
      y.dispose();
      return v;
    };
    out(true);
    noGrad(() => block.conv1.weight.set_(randn([4, 4, 3, 3])));
    expect(maxAbsDiff(out(true), out(false))).toBeLessThan(1e-5);
  });
});
