/**
 * fuseModules (torch.ao.quantization.fuse_modules) for post-training
 * quantization: conv + bn folds into one Conv2d, conv + bn + relu and
 * conv + relu become ConvReLU2d, the absorbed modules become Identity.
 * BatchNorm folding is eval-only, as PyTorch asserts.
 */
import { KilnError, noGrad, tidy, type Tensor } from '@kiln/core';
import { Module } from '../../module.js';
import { Conv2d } from '../../layers/conv.js';
import { BatchNorm2d } from '../../layers/batchnorm.js';
import { ReLU } from '../../layers/activation.js';
import { Identity } from '../../layers/shape.js';
import { Sequential } from '../../layers/container.js';
import { parameter } from '../../parameter.js';
import { skipInit } from '../../init.js';
import { copyModuleTree } from '../clone.js';

/** A Conv2d followed by ReLU, quantized as one layer (torch.ao.nn.intrinsic.ConvReLU2d; children '0' and '1'). */
export class ConvReLU2d extends Sequential {
  /** Wraps a conv and its ReLU. */
  constructor(conv: Conv2d, relu: ReLU) {
    super(conv, relu);
  }

  /** The conv. */
  get conv(): Conv2d {
    return this.getSubmodule('0') as Conv2d;
  }
}

/**
 * The conv whose weight and bias absorb an eval-mode batch norm, with
 * PyTorch's fuse_conv_bn_weights arithmetic in float32:
 * w * (gamma * rsqrt(var + eps)), (b - mean) * rsqrt(var + eps) * gamma + beta.
 */
export function fuseConvBn(conv: Conv2d, bn: BatchNorm2d): Conv2d {
  if (conv.training || bn.training) throw new KilnError('fuseModules', 'Fusion only for eval! (conv + batch norm folding uses running statistics: call model.eval() first)');
  if (!bn.running_mean || !bn.running_var) throw new KilnError('fuseModules', 'the batch norm has no running statistics to fold');
  const w = conv.effectiveTensor('weight') ?? conv.weight;
  // Its weight and bias are replaced below: no initial draw.
  const out = skipInit(() => new Conv2d(conv.inChannels, conv.outChannels, conv.kernelSize, {
    stride: conv.stride, padding: conv.padding, dilation: conv.dilation, groups: conv.groups, bias: true, device: w.device,
  }));
  const [weight, bias] = noGrad(() => tidy(() => {
    // 1 / sqrt rounded twice, as PyTorch's vectorized rsqrt (a single-rounding rsqrt moves folded weights by an ulp).
    const rsqrt = (bn.running_var as Tensor).add(bn.eps).sqrt().reciprocal();
    const gamma = bn.weight ?? rsqrt.mul(0).add(1);
    const beta = bn.bias ?? rsqrt.mul(0);
    const b0 = conv.bias ?? rsqrt.mul(0);
    const fw = w.mul(gamma.mul(rsqrt).reshape([-1, 1, 1, 1]));
    const fb = b0.sub(bn.running_mean as Tensor).mul(rsqrt).mul(gamma).add(beta);
    return [fw, fb];
  }));
  out.weight.dispose();
  out.bias?.dispose();
  out.weight = parameter(weight!);
  out.bias = parameter(bias!);
  out.eval();
  return out;
}

/** Options of {@link fuseModules}. */
export interface FuseOptions {
  /** Fuse in this model instead of a copy (torchvision's fuse_model does). Default false. */
  inplace?: boolean;
}

/**
 * Fuses each group of module paths, e.g.
 * `fuseModules(model, [['conv1', 'bn1', 'relu'], ['layer1.0.conv1', 'layer1.0.bn1']])`:
 * [conv, bn] -> folded Conv2d; [conv, bn, relu] -> ConvReLU2d of the folded
 * conv; [conv, relu] -> ConvReLU2d. Returns the fused model (a copy unless `inplace`).
 */
export function fuseModules<M extends Module>(model: M, groups: string[][], opts: FuseOptions = {}): M {
  const root = opts.inplace ? model : copyModuleTree(model);
  for (const group of groups) {
    const mods = group.map((p) => root.getSubmodule(p));
    const kinds = mods.map((m) => (m instanceof Conv2d ? 'conv' : m instanceof BatchNorm2d ? 'bn' : m instanceof ReLU ? 'relu' : m.constructor.name)).join(',');
    let fused: Module;
    if (kinds === 'conv,bn') fused = fuseConvBn(mods[0] as Conv2d, mods[1] as BatchNorm2d);
    else if (kinds === 'conv,bn,relu') fused = new ConvReLU2d(fuseConvBn(mods[0] as Conv2d, mods[1] as BatchNorm2d), new ReLU());
    else if (kinds === 'conv,relu') fused = new ConvReLU2d(mods[0] as Conv2d, new ReLU());
    else throw new KilnError('fuseModules', `cannot fuse [${group.join(', ')}] (${kinds}): expected conv+bn, conv+bn+relu or conv+relu`);
    fused.eval();
    setSubmodule(root, group[0]!, fused);
    for (const p of group.slice(1)) setSubmodule(root, p, new Identity());
  }
  return root;
}

function setSubmodule(root: Module, path: string, m: Module): void {
  const parts = path.split('.');
  const parent = parts.length > 1 ? root.getSubmodule(parts.slice(0, -1).join('.')) : root;
  parent._modules.set(parts[parts.length - 1]!, m);
}
