import { checkpoint, conv2d, tidy, type Tensor } from '@kiln/core';
import { AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Linear, MaxPool2d, Module, ReLU, Sequential, init } from '@kiln/nn';
import { BasicBlock, conv1x1, fusibleHooks, noGradNeeded } from './basic-block.js';
import { canFold, foldConvBn, releaseFolded } from './fold.js';

/** Options of {@link resnet18} / {@link resnet34} (torchvision's keyword arguments). */
export interface ResNetOptions {
  /** Size of the classifier `fc` (default 1000, ImageNet). */
  numClasses?: number;
  /**
   * Zero-initialise the last BatchNorm weight of every residual block, so
   * each block starts as the identity (torchvision's zero_init_residual).
   */
  zeroInitResidual?: boolean;
  /** Backend of the parameters (default backend when omitted). */
  device?: string;
  /** Activation checkpointing in training (see {@link ResNet.checkpointMode}); default 'none'. */
  checkpoint?: CheckpointMode;
}

/**
 * Which activations a training forward recomputes in backward instead of
 * keeping: 'none'; 'stage' checkpoints the stem (conv1 - bn1 - relu -
 * maxpool) and each of layer1..layer4 whole, five segments, as
 * torch.utils.checkpoint.checkpoint_sequential over torchvision's modules
 * with the stem as its own segment (only the stem's and the stages' outputs
 * are kept); 'block' checkpoints the stem and each BasicBlock (the stem's
 * and every block's output are kept). The stem segment's input is the image
 * itself, which the caller holds anyway, so the stem keeps nothing of its
 * own (conv1's output, bn1's, the relu_ output) between forward and
 * backward: at 224x224 that is 6.4 MB per image in float32.
 */
export type CheckpointMode = 'none' | 'stage' | 'block';

/** What {@link ResNet.forwardFeatures} returns. */
export interface ResNetFeatures {
  /** Output of `layer4`: [B, 512, H/32, W/32]. */
  layer4: Tensor;
  /** Global-average-pooled `layer4`, flattened: [B, 512], the input of `fc`. */
  pooled: Tensor;
}

/**
 * ResNet with BasicBlocks (torchvision.models.resnet.ResNet): the same
 * module tree and state-dict keys, so torchvision checkpoints load as they
 * are. Build it with {@link resnet18} or {@link resnet34}.
 *
 * ```ts
 * const model = resnet18();
 * await loadWeights(model, 'resnet18-f37072fd.pth');
 * model.eval();
 * const logits = noGrad(() => model.call(images));   // [B, 1000]
 * ```
 *
 * In eval mode with no gradient needed, forward folds every BatchNorm into
 * its conv and fuses bias, shortcut and ReLU into the conv epilogue; set
 * {@link setFuseInference}(false) to run layer by layer (both match PyTorch).
 */
export class ResNet extends Module {
  /** The 7x7 stride-2 stem convolution. */
  declare conv1: Conv2d;
  /** The stem's batch norm. */
  declare bn1: BatchNorm2d;
  /** The stem's ReLU. */
  declare relu: ReLU;
  /** The 3x3 stride-2 stem max pool. */
  declare maxpool: MaxPool2d;
  /** Stage 1: 64 channels at stride 4. */
  declare layer1: Sequential;
  /** Stage 2: 128 channels at stride 8. */
  declare layer2: Sequential;
  /** Stage 3: 256 channels at stride 16. */
  declare layer3: Sequential;
  /** Stage 4: 512 channels at stride 32. */
  declare layer4: Sequential;
  /** Global average pooling to 1x1. */
  declare avgpool: AdaptiveAvgPool2d;
  /** The classifier; replace it for transfer learning (`model.fc = new Linear(512, 10)`). */
  declare fc: Module;
  /** Blocks per stage, e.g. [2, 2, 2, 2] for resnet18. */
  readonly layers: readonly [number, number, number, number];
  /** Take the fused path in eval mode when no gradient is needed (default true). */
  fuseInference = true;
  /** Activation checkpointing of the stem and the residual stages or blocks (takes effect when gradients are recorded). */
  checkpointMode: CheckpointMode;
  private inplanes = 64;

  /** A ResNet of BasicBlocks with `layers` blocks per stage (resnet18: [2, 2, 2, 2]), initialised as torchvision's unless skipInit. */
  constructor(layers: readonly [number, number, number, number], opts: ResNetOptions = {}) {
    super();
    const device = opts.device;
    this.layers = [...layers] as [number, number, number, number];
    this.checkpointMode = opts.checkpoint ?? 'none';
    this.conv1 = new Conv2d(3, 64, 7, { stride: 2, padding: 3, bias: false, device });
    this.bn1 = new BatchNorm2d(64, { device });
    this.relu = new ReLU({ inplace: true });
    this.maxpool = new MaxPool2d(3, { stride: 2, padding: 1 });
    this.layer1 = this.makeLayer(64, layers[0], 1, device);
    this.layer2 = this.makeLayer(128, layers[1], 2, device);
    this.layer3 = this.makeLayer(256, layers[2], 2, device);
    this.layer4 = this.makeLayer(512, layers[3], 2, device);
    this.avgpool = new AdaptiveAvgPool2d([1, 1]);
    this.fc = new Linear(512 * BasicBlock.expansion, opts.numClasses ?? 1000, { device });

    // torchvision's initialisation (Linear keeps its default).
    for (const m of this.modules()) {
      if (m instanceof Conv2d) init.kaimingNormal_(m.weight, { mode: 'fan_out', nonlinearity: 'relu' });
      else if (m instanceof BatchNorm2d) {
        init.constant_(m.weight!, 1);
        init.constant_(m.bias!, 0);
      }
    }
    if (opts.zeroInitResidual) {
      for (const m of this.modules()) if (m instanceof BasicBlock) init.constant_(m.bn2.weight!, 0);
    }
  }

  private makeLayer(planes: number, blocks: number, stride: number, device?: string): Sequential {
    let downsample: Sequential | null = null;
    if (stride !== 1 || this.inplanes !== planes * BasicBlock.expansion) {
      downsample = new Sequential(conv1x1(this.inplanes, planes * BasicBlock.expansion, stride, device), new BatchNorm2d(planes * BasicBlock.expansion, { device }));
    }
    const list: Module[] = [new BasicBlock(this.inplanes, planes, stride, downsample, device)];
    this.inplanes = planes * BasicBlock.expansion;
    for (let i = 1; i < blocks; i++) list.push(new BasicBlock(this.inplanes, planes, 1, null, device));
    return new Sequential(...list);
  }

  /** Turns the fused inference path on or off for the stem and every block. */
  setFuseInference(enabled: boolean): this {
    this.fuseInference = enabled;
    for (const m of this.modules()) if (m instanceof BasicBlock) m.fuseInference = enabled;
    return this;
  }

  /**
   * Folds every BatchNorm into its conv now (the fused path would do it on
   * first use) and returns this; the model must be in eval mode. The folded
   * weights are rebuilt automatically when parameters or running stats change.
   */
  fuseForInference(): this {
    this.setFuseInference(true);
    if (canFold(this.bn1)) foldConvBn(this.conv1, this.bn1);
    for (const m of this.modules()) {
      if (!(m instanceof BasicBlock) || !canFold(m.bn1) || !canFold(m.bn2)) continue;
      foldConvBn(m.conv1, m.bn1);
      foldConvBn(m.conv2, m.bn2);
      const ds = m.downsample;
      if (ds && ds.at(0) instanceof Conv2d && ds.at(1) instanceof BatchNorm2d) foldConvBn(ds.at(0) as Conv2d, ds.at(1) as BatchNorm2d);
    }
    return this;
  }

  /** Disposes every cached folded weight (they are rebuilt on the next fused forward). */
  releaseFolded(): void {
    releaseFolded(this.bn1);
    for (const m of this.modules()) if (m instanceof BasicBlock) m.releaseFolded();
  }

  /** conv1 - bn1 - relu - maxpool, fused into one conv + pool when possible. */
  private stem(x: Tensor): Tensor {
    return tidy(() => {
      let y: Tensor;
      if (this.fuseInference && !this.training && canFold(this.bn1) && fusibleHooks([this.conv1, this.bn1, this.relu]) && noGradNeeded(this.conv1, x) && noGradNeeded(this.bn1, x)) {
        const f = foldConvBn(this.conv1, this.bn1);
        y = conv2d(x, f.weight, f.bias, { stride: this.conv1.stride, padding: this.conv1.padding, dilation: this.conv1.dilation, groups: this.conv1.groups }, { relu: true });
      } else {
        y = this.relu.call(this.bn1.call(this.conv1.call(x)));
      }
      return this.maxpool.call(y) as Tensor;
    });
  }

  /**
   * The backbone without the classifier: `layer4`'s output and the pooled
   * 512-d features (what `fc` sees). Use it to fuse image features with
   * other inputs, or to train a new head on frozen features.
   */
  forwardFeatures(x: Tensor): ResNetFeatures {
    return tidy(() => {
      // The stem is a segment of its own in both checkpoint modes (see CheckpointMode).
      let h = this.checkpointMode === 'none' ? this.stem(x) : checkpoint((image: Tensor) => this.stem(image), x);
      for (const layer of [this.layer1, this.layer2, this.layer3, this.layer4]) h = this.runStage(layer, h);
      const pooled = (this.avgpool.call(h) as Tensor).flatten(1);
      return { layer4: h, pooled };
    });
  }

  private runStage(layer: Sequential, h: Tensor): Tensor {
    const run = (m: Module) => (x: Tensor) => m.call(x) as Tensor;
    if (this.checkpointMode === 'stage') return checkpoint(run(layer), h);
    if (this.checkpointMode === 'block') {
      for (const block of layer.children()) h = checkpoint(run(block), h);
      return h;
    }
    return layer.call(h) as Tensor;
  }

  /** Logits [B, numClasses] for images [B, 3, H, W] (ImageNet-normalised). */
  override forward(x: Tensor): Tensor {
    return tidy(() => this.fc.call(this.forwardFeatures(x).pooled) as Tensor);
  }
}

/** ResNet-18 (torchvision.models.resnet18): BasicBlocks [2, 2, 2, 2], 11,689,512 parameters. */
export function resnet18(opts: ResNetOptions = {}): ResNet {
  return new ResNet([2, 2, 2, 2], opts);
}

/** ResNet-34 (torchvision.models.resnet34): BasicBlocks [3, 4, 6, 3]. */
export function resnet34(opts: ResNetOptions = {}): ResNet {
  return new ResNet([3, 4, 6, 3], opts);
}
