/**
 * torchvision's ResNet18 topology (BasicBlock, [2, 2, 2, 2]), shared by the
 * Kiln and TF.js builders so both walk the same graph by the same names.
 */

/** One BasicBlock: conv3x3(stride)-bn-relu-conv3x3-bn (+ identity or 1x1 downsample) - relu. */
export interface BlockSpec {
  /** State-dict prefix, e.g. 'layer2.0'. */
  prefix: string;
  in: number;
  out: number;
  stride: number;
  downsample: boolean;
}

export const RESNET18_BLOCKS: BlockSpec[] = [64, 128, 256, 512].flatMap((out, li) =>
  [0, 1].map((bi) => {
    const stride = li > 0 && bi === 0 ? 2 : 1;
    const inCh = bi === 0 ? [64, 64, 128, 256][li]! : out;
    return { prefix: `layer${li + 1}.${bi}`, in: inCh, out, stride, downsample: stride !== 1 || inCh !== out };
  }),
);

/** Every convolution's state-dict prefix (conv1, then each block's conv1, conv2, downsample.0). */
export const RESNET18_CONV_NAMES: string[] = [
  'conv1',
  ...RESNET18_BLOCKS.flatMap((b) => [`${b.prefix}.conv1`, `${b.prefix}.conv2`, ...(b.downsample ? [`${b.prefix}.downsample.0`] : [])]),
];
