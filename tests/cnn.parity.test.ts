// Kiln vs PyTorch for the CNN ops of tests/reference/gen_cnn.py (conv2d incl.
// the fused epilogue, batchNorm, pooling, linear and the losses): forward
// values and input/weight/bias gradients on every backend, tolerances per op
// in tests/parity/cnn-table.ts. ResNet18's conv shapes are in
// cnn.resnet-convs.parity.test.ts.
import { CNN_FAMILIES, CNN_OPS } from './parity/cnn-table.js';
import { describeTableParity } from './parity/table-suite.js';

for (const [family, ops] of Object.entries(CNN_FAMILIES)) {
  // Every family here is a conv, GEMM (linear), norm or pool kernel family:
  // each also runs under the other kernel strategy class (tests/helpers/env.ts).
  await describeTableParity(`parity cnn/${family}`, 'cnn', CNN_OPS,
    (c) => (ops as readonly string[]).includes(c.op) && !c.name.startsWith('conv2dResnet/'), { strategies: true });
}
