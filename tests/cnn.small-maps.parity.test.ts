// ResNet18's convs on the 32x32 demo's small maps (8x8 down to 1x1, batch 16) and
// one-pixel outputs: forward and input/weight gradients vs PyTorch on every backend
// (tests/reference/gen_conv_small_maps.py). These shapes take the map-size routes:
// direct instead of im2col, no Winograd on mostly-padding tiles, the single-tap GEMMs,
// the input gradient with images folded into its columns (ops/conv.ts, ops/conv-tap.ts).
import { CNN_OPS } from './parity/cnn-table.js';
import { describeTableParity } from './parity/table-suite.js';

// Also under the other kernel strategy class (the GPU kernels on lavapipe; tests/helpers/env.ts).
await describeTableParity('parity cnn/small maps', 'conv_small_maps', CNN_OPS, () => true, { strategies: true });
