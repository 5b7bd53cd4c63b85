/**
 * A small functional ResNet18 on @kiln/core ops, torchvision's architecture
 * and state-dict names, for the model benchmarks (until @kiln/resnet can
 * stand in). Two forms from the same weights:
 *
 * - eval: BatchNorm folded into each conv (host-side), bias + residual +
 *   ReLU in the conv's fused epilogue, run under noGrad;
 * - train: conv / batchNorm(training) / relu with autograd, cross-entropy,
 *   and a plain SGD update (p -= lr * grad), as the PyTorch peer does
 *   (`p.sub_(p.grad, alpha=lr)`, one fused kernel per parameter there; here
 *   core's fused `sgdStep_`, one dispatch per parameter, not sub_'s mul + sub).
 */
import {
  adaptiveAvgPool2d, batchNorm, conv2d, crossEntropy, fromArray, linear, maxPool2d, noGrad, sgdStep_, tidy,
  type Tensor,
} from '@kiln/core';
import { RESNET18_BLOCKS, RESNET18_CONV_NAMES } from './architecture.js';
import { foldConvBn, type HostTensor, type ResNetAssets } from './weights.js';

const upload = (t: HostTensor, device: string, requiresGrad = false): Tensor =>
  fromArray(t.data, t.shape, { device, requiresGrad });

/** One stage of the eval network: its ops, and their multiply-add FLOP given input and output shapes. */
export interface Stage {
  name: string;
  run(h: Tensor): Tensor;
  flop(inShape: readonly number[], outShape: readonly number[]): number;
}

/** Inference ResNet18 with BatchNorm folded into the convolutions. */
export class KilnResNet18Eval {
  private readonly convs = new Map<string, { weight: Tensor; bias: Tensor }>();
  private readonly fcWeight: Tensor;
  private readonly fcBias: Tensor;

  constructor(assets: ResNetAssets, device: string) {
    for (const name of RESNET18_CONV_NAMES) {
      const { weight, bias } = foldConvBn(assets.params, name);
      this.convs.set(name, { weight: upload(weight, device), bias: upload(bias, device) });
    }
    this.fcWeight = upload(assets.params.get('fc.weight')!, device);
    this.fcBias = upload(assets.params.get('fc.bias')!, device);
  }

  private conv(name: string, x: Tensor, stride: number, padding: number, epilogue: { residual?: Tensor; relu?: boolean }): Tensor {
    const c = this.convs.get(name)!;
    return conv2d(x, c.weight, c.bias, { stride, padding }, epilogue);
  }

  /**
   * The network as a list of stages (stem, pool, each BasicBlock, head), each
   * taking the previous stage's output; forward() chains them, the profile
   * times them one by one.
   */
  stages(): Stage[] {
    const conv = (n: number, c: number, k: number, y: readonly number[]) => 2 * n * c * k * k * y[1]! * y[2]! * y[3]!;
    return [
      { name: 'conv1+relu', run: (x) => this.conv('conv1', x, 2, 3, { relu: true }), flop: (x, y) => conv(x[0]!, 3, 7, y) },
      { name: 'maxpool', run: (h) => maxPool2d(h, 3, { stride: 2, padding: 1 }), flop: () => 0 },
      ...RESNET18_BLOCKS.map((b) => ({
        name: b.prefix,
        run: (h: Tensor) => {
          const identity = b.downsample ? this.conv(`${b.prefix}.downsample.0`, h, b.stride, 0, {}) : h;
          const mid = this.conv(`${b.prefix}.conv1`, h, b.stride, 1, { relu: true });
          return this.conv(`${b.prefix}.conv2`, mid, 1, 1, { residual: identity, relu: true });
        },
        flop: (x: readonly number[], y: readonly number[]) => conv(x[0]!, b.in, 3, y) + conv(x[0]!, b.out, 3, y) + (b.downsample ? conv(x[0]!, b.in, 1, y) : 0),
      })),
      { name: 'avgpool+fc', run: (h) => linear(adaptiveAvgPool2d(h, 1).flatten(1), this.fcWeight, this.fcBias), flop: (x) => 2 * x[0]! * 512 * 1000 },
    ];
  }

  /** Logits [N, 1000] of an [N, 3, 224, 224] batch. */
  forward(x: Tensor): Tensor {
    return noGrad(() => tidy(() => this.stages().reduce((h, stage) => stage.run(h), x)));
  }

  dispose(): void {
    for (const c of this.convs.values()) {
      c.weight.dispose();
      c.bias.dispose();
    }
    this.fcWeight.dispose();
    this.fcBias.dispose();
  }
}

/** Training ResNet18: parameters with gradients, BatchNorm running statistics, SGD. */
export class KilnResNet18Train {
  /** Learnable parameters by state-dict name. */
  readonly params = new Map<string, Tensor>();
  /** running_mean / running_var by state-dict name. */
  readonly buffers = new Map<string, Tensor>();

  constructor(assets: ResNetAssets, device: string, private readonly lr: number) {
    for (const [name, t] of assets.params) {
      if (name.endsWith('running_mean') || name.endsWith('running_var')) this.buffers.set(name, upload(t, device));
      else this.params.set(name, upload(t, device, true));
    }
  }

  private p(name: string): Tensor {
    const t = this.params.get(name);
    if (!t) throw new Error(`ResNet18 has no parameter ${name}`);
    return t;
  }

  private bn(x: Tensor, name: string): Tensor {
    return batchNorm(x, this.buffers.get(`${name}.running_mean`)!, this.buffers.get(`${name}.running_var`)!, {
      weight: this.p(`${name}.weight`),
      bias: this.p(`${name}.bias`),
      training: true,
      momentum: 0.1,
    });
  }

  private convBn(x: Tensor, conv: string, bn: string, stride: number, padding: number): Tensor {
    return this.bn(conv2d(x, this.p(`${conv}.weight`), null, { stride, padding }), bn);
  }

  /** Logits of a batch, recording the autograd graph. */
  forward(x: Tensor): Tensor {
    return tidy(() => {
      let h = this.convBn(x, 'conv1', 'bn1', 2, 3).relu();
      h = maxPool2d(h, 3, { stride: 2, padding: 1 });
      for (const b of RESNET18_BLOCKS) {
        const identity = b.downsample ? this.convBn(h, `${b.prefix}.downsample.0`, `${b.prefix}.downsample.1`, b.stride, 0) : h;
        const mid = this.convBn(h, `${b.prefix}.conv1`, `${b.prefix}.bn1`, b.stride, 1).relu();
        h = this.convBn(mid, `${b.prefix}.conv2`, `${b.prefix}.bn2`, 1, 1).add(identity).relu();
      }
      return linear(adaptiveAvgPool2d(h, 1).flatten(1), this.p('fc.weight'), this.p('fc.bias'));
    });
  }

  /** One SGD step on (x, labels); returns the loss (the caller disposes it). */
  step(x: Tensor, labels: Tensor): Tensor {
    const loss = tidy(() => {
      const l = crossEntropy(this.forward(x), labels);
      l.backward();
      return l;
    });
    noGrad(() => {
      for (const p of this.params.values()) {
        if (!p.grad) continue;
        sgdStep_(p, p.grad, null, { lr: this.lr });
        p.grad.dispose();
        p.grad = null;
      }
    });
    const value = loss.detach();
    loss.dispose();
    return value;
  }

  dispose(): void {
    for (const t of [...this.params.values(), ...this.buffers.values()]) t.dispose();
  }
}
