// Every distinct conv of ResNet18 (channels, kernel, stride, padding as in
// torchvision's model, maps at a quarter of 224x224, batch 1): forward and
// input/weight gradients vs PyTorch on every backend (tests/reference/gen_cnn.py).
import { CNN_OPS } from './parity/cnn-table.js';
import { describeTableParity } from './parity/table-suite.js';

// Also under the other kernel strategy class (the GPU kernels on lavapipe; tests/helpers/env.ts).
await describeTableParity('parity cnn/resnet18 convs', 'cnn', CNN_OPS, (c) => c.name.startsWith('conv2dResnet/'), { strategies: true });
