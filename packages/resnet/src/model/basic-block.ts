import { conv2d, isGradEnabled, tidy, type Tensor } from '@kiln/core';
import { BatchNorm2d, Conv2d, Module, ReLU, hooksAllowFastPath, type Sequential } from '@kiln/nn';
import { canFold, foldConvBn, releaseFolded } from './fold.js';

/** 3x3 convolution with padding 1 and no bias (torchvision's conv3x3). */
export function conv3x3(inPlanes: number, outPlanes: number, stride = 1, device?: string): Conv2d {
  return new Conv2d(inPlanes, outPlanes, 3, { stride, padding: 1, bias: false, device });
}

/** 1x1 convolution without bias (torchvision's conv1x1), the downsample branch. */
export function conv1x1(inPlanes: number, outPlanes: number, stride = 1, device?: string): Conv2d {
  return new Conv2d(inPlanes, outPlanes, 1, { stride, bias: false, device });
}

/**
 * True when a fused path may replace the calls of `modules`: none has a hook
 * that could change its forward other than one that derives a tensor (a
 * pruned weight), which the fold reads through Module.effectiveTensor.
 */
export function fusibleHooks(modules: readonly Module[]): boolean {
  return modules.every(hooksAllowFastPath);
}

/**
 * True when a forward pass through `m` records no gradient: grad mode is off,
 * or neither the input nor any parameter of `m` requires grad (a frozen
 * backbone). Only then may the fused path skip the modules it folds.
 */
export function noGradNeeded(m: Module, x: Tensor): boolean {
  return !isGradEnabled() || (!x.requiresGrad && m.parameters().every((p) => !p.requiresGrad));
}

/**
 * The residual block of ResNet18/34 (torchvision.models.resnet.BasicBlock):
 * conv3x3-bn-relu-conv3x3-bn, plus the input (or its 1x1-conv-bn
 * `downsample`), then relu. Children and state-dict keys are torchvision's:
 * `conv1`, `bn1`, `relu`, `conv2`, `bn2`, `downsample.0`, `downsample.1`.
 *
 * In eval mode, when no gradient is needed, forward takes the fused path:
 * each BatchNorm is folded into its conv (cached, see fold.ts) and the
 * shortcut add and ReLUs ride in the conv epilogue, 2-3 kernels per block
 * instead of ~10. The convs' weights are their effective tensors (a pruned
 * conv's `weight_orig * weight_mask`); a child with any other forward hook or
 * pre-hook makes the block run layer by layer, so hooks always run. Set
 * {@link fuseInference} to false to force the layer-by-layer path.
 */
export class BasicBlock extends Module {
  /** Output channels per `planes` (1 for BasicBlock, 4 for Bottleneck). */
  static readonly expansion = 1;
  /** First 3x3 convolution (carries the stride). */
  declare conv1: Conv2d;
  /** Batch norm after conv1. */
  declare bn1: BatchNorm2d;
  /** The ReLU used after bn1 and after the residual add. */
  declare relu: ReLU;
  /** Second 3x3 convolution. */
  declare conv2: Conv2d;
  /** Batch norm after conv2. */
  declare bn2: BatchNorm2d;
  /** 1x1 conv + batch norm on the shortcut when the shape changes, else null. */
  declare downsample: Sequential | null;
  /** Stride of conv1 (and of the downsample). */
  readonly stride: number;
  /** Take the fused path in eval mode when no gradient is needed (default true). */
  fuseInference = true;

  /** torchvision's BasicBlock(inplanes, planes, stride, downsample). */
  constructor(inPlanes: number, planes: number, stride = 1, downsample: Sequential | null = null, device?: string) {
    super();
    this.conv1 = conv3x3(inPlanes, planes, stride, device);
    this.bn1 = new BatchNorm2d(planes, { device });
    this.relu = new ReLU({ inplace: true });
    this.conv2 = conv3x3(planes, planes, 1, device);
    this.bn2 = new BatchNorm2d(planes, { device });
    // torchvision stores None when there is no downsample: no child, no keys.
    if (downsample) this.downsample = downsample;
    this.stride = stride;
  }

  private get downsampleConvBn(): [Conv2d, BatchNorm2d] | null {
    const ds = this.downsample;
    if (!ds) return null;
    const [conv, bn] = [ds.at(0), ds.at(1)];
    return ds.length === 2 && conv instanceof Conv2d && bn instanceof BatchNorm2d ? [conv, bn] : null;
  }

  /** Whether forward(x) would take the fused inference path. */
  usesFusedPath(x: Tensor): boolean {
    if (!this.fuseInference || this.training || !canFold(this.bn1) || !canFold(this.bn2)) return false;
    if (this.downsample && !(this.downsampleConvBn && canFold(this.downsampleConvBn[1]))) return false;
    return fusibleHooks(this.modules().slice(1)) && noGradNeeded(this, x);
  }

  override forward(x: Tensor): Tensor {
    if (this.usesFusedPath(x)) return this.forwardFused(x);
    return tidy(() => {
      let out = this.relu.call(this.bn1.call(this.conv1.call(x)));
      out = this.bn2.call(this.conv2.call(out));
      const identity = this.downsample ? (this.downsample.call(x) as Tensor) : x;
      return this.relu.call(out.add(identity));
    });
  }

  /** conv1+bn1+relu, then conv2+bn2 with the shortcut added and ReLU applied in its epilogue. */
  private forwardFused(x: Tensor): Tensor {
    return tidy(() => {
      const c1 = foldConvBn(this.conv1, this.bn1);
      const c2 = foldConvBn(this.conv2, this.bn2);
      const out = conv2d(x, c1.weight, c1.bias, { stride: this.conv1.stride, padding: this.conv1.padding, dilation: this.conv1.dilation, groups: this.conv1.groups }, { relu: true });
      let identity = x;
      const ds = this.downsampleConvBn;
      if (ds) {
        const cd = foldConvBn(ds[0], ds[1]);
        identity = conv2d(x, cd.weight, cd.bias, { stride: ds[0].stride, padding: ds[0].padding, dilation: ds[0].dilation, groups: ds[0].groups });
      }
      return conv2d(out, c2.weight, c2.bias, { stride: this.conv2.stride, padding: this.conv2.padding, dilation: this.conv2.dilation, groups: this.conv2.groups }, { residual: identity, relu: true });
    });
  }

  /** Disposes this block's cached folded weights (rebuilt on the next fused forward). */
  releaseFolded(): void {
    releaseFolded(this.bn1);
    releaseFolded(this.bn2);
    const ds = this.downsampleConvBn;
    if (ds) releaseFolded(ds[1]);
  }
}
