/**
 * ResNet18 prepared for eager-mode static quantization, as
 * torchvision.models.quantization.resnet18(quantize=False): QuantStub and
 * DeQuantStub at the edges, each block's residual add + ReLU through a
 * FloatFunctional (`add_relu`), a Flatten module before `fc`, and
 * `fuseModel()` fusing conv+bn(+relu) the way torchvision's fuse_model does.
 * State-dict keys are torchvision's (the stubs and FloatFunctionals hold none).
 */
import { type Tensor } from '@kiln/core';
import { Conv2d, Flatten, Module, Sequential, quantization, type BatchNorm2d, type ReLU } from '@kiln/nn';
import { BasicBlock } from '../model/basic-block.js';
import { resnet18, type ResNet, type ResNetOptions } from '../model/resnet.js';

/** torchvision's QuantizableBasicBlock: BasicBlock whose shortcut add + ReLU is `add_relu.addRelu(out, identity)`. */
export class QuantizableBasicBlock extends Module {
  /** The first conv (ConvReLU2d after fuseModel, QuantizedConv2d after convert). */
  declare conv1: Module;
  /** Batch norm (Identity after fuseModel). */
  declare bn1: Module;
  /** ReLU (Identity after fuseModel). */
  declare relu: Module;
  /** The second conv. */
  declare conv2: Module;
  /** Batch norm (Identity after fuseModel). */
  declare bn2: Module;
  /** The shortcut conv + bn, or null. */
  declare downsample: Sequential | null;
  /** The residual add + ReLU, observed and quantized as one op. */
  declare add_relu: quantization.FloatFunctional;

  /** Takes over a BasicBlock's layers (same tensors, same state-dict keys). */
  constructor(block: BasicBlock) {
    super();
    this.conv1 = block.conv1;
    this.bn1 = block.bn1;
    this.relu = block.relu;
    this.conv2 = block.conv2;
    this.bn2 = block.bn2;
    if (block.downsample) this.downsample = block.downsample;
    this.add_relu = new quantization.FloatFunctional();
    this.training = block.training;
  }

  override forward(x: Tensor): Tensor {
    let out = this.relu.call(this.bn1.call(this.conv1.call(x)));
    out = this.bn2.call(this.conv2.call(out));
    const identity = this.downsample ? (this.downsample.call(x) as Tensor) : x;
    return this.add_relu.addRelu(out, identity);
  }

  /** Fuses conv1+bn1+relu, conv2+bn2 and the downsample's conv+bn, in place (eval mode). */
  fuseModel(): this {
    quantization.fuseModules(this, [['conv1', 'bn1', 'relu'], ['conv2', 'bn2']], { inplace: true });
    if (this.downsample) quantization.fuseModules(this, [['downsample.0', 'downsample.1']], { inplace: true });
    return this;
  }
}

/** torchvision's QuantizableResNet: quant -> ResNet (blocks with add_relu) -> dequant. */
export class QuantizableResNet extends Module {
  /** Quantizes the input (QuantStub, Quantize after convert). */
  declare quant: quantization.QuantStub;
  /** The first conv (ConvReLU2d after fuseModel, QuantizedConv2d after convert). */
  declare conv1: Module;
  /** Batch norm (Identity after fuseModel). */
  declare bn1: Module;
  /** ReLU (Identity after fuseModel). */
  declare relu: Module;
  /** Stem max pooling. */
  declare maxpool: Module;
  /** Stage 1 (64 channels). */
  declare layer1: Sequential;
  /** Stage 2 (128 channels). */
  declare layer2: Sequential;
  /** Stage 3 (256 channels). */
  declare layer3: Sequential;
  /** Stage 4 (512 channels). */
  declare layer4: Sequential;
  /** Global average pooling. */
  declare avgpool: Module;
  /** Flatten before fc. */
  declare flatten: Module;
  /** The classifier. */
  declare fc: Module;
  /** Dequantizes the logits (DeQuantStub, DeQuantize after convert). */
  declare dequant: quantization.DeQuantStub;

  /** Takes over a ResNet's layers, replacing each BasicBlock with a {@link QuantizableBasicBlock}. */
  constructor(net: ResNet) {
    super();
    this.quant = new quantization.QuantStub();
    this.conv1 = net.conv1;
    this.bn1 = net.bn1 as BatchNorm2d;
    this.relu = net.relu as ReLU;
    this.maxpool = net.maxpool;
    for (const name of ['layer1', 'layer2', 'layer3', 'layer4'] as const) {
      this[name] = new Sequential(...net[name].children().map((b) => new QuantizableBasicBlock(b as BasicBlock)));
    }
    this.avgpool = net.avgpool;
    this.flatten = new Flatten();
    this.fc = net.fc;
    this.dequant = new quantization.DeQuantStub();
    this.training = net.training;
  }

  override forward(x: Tensor): Tensor {
    let h = this.quant.call(x);
    h = this.maxpool.call(this.relu.call(this.bn1.call(this.conv1.call(h)))) as Tensor;
    for (const layer of [this.layer1, this.layer2, this.layer3, this.layer4]) h = layer.call(h) as Tensor;
    h = this.flatten.call(this.avgpool.call(h) as Tensor);
    return this.dequant.call(this.fc.call(h) as Tensor);
  }

  /** torchvision's fuse_model(): the stem's conv1+bn1+relu and every block's fusions, in place (eval mode). */
  fuseModel(): this {
    if (this.conv1 instanceof Conv2d) quantization.fuseModules(this, [['conv1', 'bn1', 'relu']], { inplace: true });
    for (const m of this.modules()) if (m instanceof QuantizableBasicBlock) m.fuseModel();
    return this;
  }
}

/** torchvision.models.quantization.resnet18(quantize=False): a float ResNet18 ready for fuseModel / prepare / convert. */
export function quantizableResnet18(opts: ResNetOptions = {}): QuantizableResNet {
  return new QuantizableResNet(resnet18(opts));
}
