/**
 * What is measured: the case descriptions every implementation (Kiln and
 * the peers) builds a runner for, and their FLOP counts.
 */

/** One measured operation, ready to run; run() resolves when its work is complete. */
export interface Runner {
  run(): Promise<void>;
  dispose(): void;
}

/** A convolution of ResNet18 (square kernels, stride and padding, no dilation or groups). */
export interface ConvShape {
  name: string;
  C: number;
  H: number;
  W: number;
  O: number;
  k: number;
  s: number;
  p: number;
}

export type ConvDirection = 'forward' | 'input_grad' | 'weight_grad';

/** Every distinct convolution of torchvision's ResNet18 at 224x224 (11 shapes). */
export const RESNET18_CONVS: ConvShape[] = [
  { name: 'conv1 3->64 7x7/2 @224', C: 3, H: 224, W: 224, O: 64, k: 7, s: 2, p: 3 },
  { name: 'layer1 64->64 3x3 @56', C: 64, H: 56, W: 56, O: 64, k: 3, s: 1, p: 1 },
  { name: 'layer2 64->128 3x3/2 @56', C: 64, H: 56, W: 56, O: 128, k: 3, s: 2, p: 1 },
  { name: 'layer2 down 64->128 1x1/2 @56', C: 64, H: 56, W: 56, O: 128, k: 1, s: 2, p: 0 },
  { name: 'layer2 128->128 3x3 @28', C: 128, H: 28, W: 28, O: 128, k: 3, s: 1, p: 1 },
  { name: 'layer3 128->256 3x3/2 @28', C: 128, H: 28, W: 28, O: 256, k: 3, s: 2, p: 1 },
  { name: 'layer3 down 128->256 1x1/2 @28', C: 128, H: 28, W: 28, O: 256, k: 1, s: 2, p: 0 },
  { name: 'layer3 256->256 3x3 @14', C: 256, H: 14, W: 14, O: 256, k: 3, s: 1, p: 1 },
  { name: 'layer4 256->512 3x3/2 @14', C: 256, H: 14, W: 14, O: 512, k: 3, s: 2, p: 1 },
  { name: 'layer4 down 256->512 1x1/2 @14', C: 256, H: 14, W: 14, O: 512, k: 1, s: 2, p: 0 },
  { name: 'layer4 512->512 3x3 @7', C: 512, H: 7, W: 7, O: 512, k: 3, s: 1, p: 1 },
];

/** The --quick subset: the stem, one stride-1 and one strided/downsample shape. */
export const QUICK_CONVS = RESNET18_CONVS.filter((_, i) => i === 1 || i === 5 || i === 6);

export const convOut = (c: ConvShape): [number, number] => [
  Math.floor((c.H + 2 * c.p - c.k) / c.s) + 1,
  Math.floor((c.W + 2 * c.p - c.k) / c.s) + 1,
];

/** Multiply-adds x2 of one direction (each of forward, input-grad and weight-grad costs the same). */
export function convFlop(c: ConvShape, batch: number): number {
  const [oh, ow] = convOut(c);
  return 2 * batch * c.O * oh * ow * c.C * c.k * c.k;
}

/** A [N, C, H, W] activation for the BatchNorm and pooling cases. */
export interface Nchw {
  name: string;
  N: number;
  C: number;
  H: number;
  W: number;
}

/** Forward FLOP of ResNet18 at 224x224 per image (convs + fc), for GFLOP/s of the model cases. */
export const RESNET18_FLOP_PER_IMAGE = (() => {
  const [c1, l1, l2s, l2d, l2, l3s, l3d, l3, l4s, l4d, l4] = RESNET18_CONVS.map((c) => convFlop(c, 1)) as number[] as [number, number, number, number, number, number, number, number, number, number, number];
  return c1 + 4 * l1 + l2s + l2d + 3 * l2 + l3s + l3d + 3 * l3 + l4s + l4d + 3 * l4 + 2 * 512 * 1000;
})();
