// The small CNN of tests/reference/gen_nn.py, layer for layer, shared by the
// nn unit tests and the PyTorch parity tests in tests/nn.*.test.ts.
import type { Tensor } from '@kiln/core';
import { AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Linear, MaxPool2d, Module, ReLU } from '@kiln/nn';

/** conv-bn-relu-maxpool-conv-bn-relu-adaptive-avgpool-linear on 3-channel images, 10 classes. */
export class SmallCNN extends Module {
  conv1 = new Conv2d(3, 8, 3, { padding: 1, bias: false });
  bn1 = new BatchNorm2d(8);
  relu = new ReLU({ inplace: true });
  pool = new MaxPool2d(2);
  conv2 = new Conv2d(8, 16, 3, { padding: 1, bias: false });
  bn2 = new BatchNorm2d(16);
  avgpool = new AdaptiveAvgPool2d([1, 1]);
  fc = new Linear(16, 10);

  override forward(x: Tensor): Tensor {
    x = this.pool.call(this.relu.call(this.bn1.call(this.conv1.call(x)))) as Tensor;
    x = this.relu.call(this.bn2.call(this.conv2.call(x)));
    return this.fc.call(this.avgpool.call(x).flatten(1));
  }
}
