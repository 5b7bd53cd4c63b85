// PyTorch's autocast op lists (torch/csrc/autograd/autocast_mode.cpp, CUDA),
// restricted to the ops Kiln has. Ops not listed run in their inputs' dtype:
// batch norm (float16 in, float16 out, statistics in float32), pooling,
// relu, and the binary ops, whose ordinary type promotion already gives the
// widest input type (float16 + float32 -> float32).

/** What autocast does to an op's floating inputs. */
export type CastPolicy = 'lower' | 'float32' | 'promote';

/** Op name -> policy: 'lower' casts float32 inputs to the autocast dtype, 'float32' casts lower-precision inputs up, 'promote' casts every input to the widest one. */
export const AUTOCAST_POLICY: Readonly<Record<string, CastPolicy>> = {
  // Run in float16: the matrix products, where float16 halves the bytes and tensor cores pay.
  conv2d: 'lower',
  linear: 'lower',
  matmul: 'lower',
  // Run in float32: ops whose range or accumulation float16 cannot hold.
  exp: 'float32',
  log: 'float32',
  pow: 'float32',
  reciprocal: 'float32',
  rsqrt: 'float32',
  sum: 'float32',
  softmax: 'float32',
  logSoftmax: 'float32',
  logsumexp: 'float32',
  nllLoss: 'float32',
  crossEntropy: 'float32',
  mseLoss: 'float32',
  // Widest input type.
  cat: 'promote',
  stack: 'promote',
};
