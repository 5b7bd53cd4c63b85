/**
 * The other layers of ResNet18: BatchNorm in training mode (forward with
 * batch statistics and the backward to input, weight and bias) and the two
 * poolings (max 3x3 stride 2 pad 1 after the stem, adaptive average to 1x1
 * before the classifier), at ResNet18's shapes.
 */
import { adaptiveAvgPool2d, batchNorm, maxPool2d, ones, randn, zeros } from '@kiln/core';
import { kilnRunner, measureCase, type Bench } from '../bench.js';
import type { Nchw } from '../cases.js';

const size = (s: Nchw) => s.N * s.C * s.H * s.W;

export async function layersSuite(bench: Bench): Promise<void> {
  const N = bench.opts.quick ? 1 : 8;
  const device = 'webgpu';
  const bnShapes: Nchw[] = [
    { name: 'bn1', N, C: 64, H: 112, W: 112 },
    { name: 'layer3', N, C: 256, H: 14, W: 14 },
  ];
  for (const s of bench.opts.quick ? bnShapes.slice(1) : bnShapes) {
    await measureCase(bench, {
      suite: 'batchnorm_train',
      name: `${s.name} [${s.N},${s.C},${s.H},${s.W}] fwd+bwd`,
      gpuTime: true,
      kiln: bench.kiln
        ? () => {
            const x = randn([s.N, s.C, s.H, s.W], { device, requiresGrad: true });
            const weight = ones([s.C], { device, requiresGrad: true });
            const bias = zeros([s.C], { device, requiresGrad: true });
            const runningMean = zeros([s.C], { device });
            const runningVar = ones([s.C], { device });
            const dy = randn(x.shape, { device });
            const params = [x, weight, bias];
            return kilnRunner(bench.kiln!, [...params, runningMean, runningVar, dy], () => {
              batchNorm(x, runningMean, runningVar, { weight, bias, training: true }).backward(dy);
              for (const p of params) {
                p.grad?.dispose();
                p.grad = null;
              }
            });
          }
        : null,
      tfjs: bench.tfjs ? () => bench.tfjs!.batchNormTrain(s) : null,
      torch: { kind: 'batchnorm', N: s.N, C: s.C, H: s.H, W: s.W },
      extra: { bytes: size(s) * 4 },
    });
  }

  const pool: Nchw = { name: 'maxpool 3x3/2 pad 1', N, C: 64, H: 112, W: 112 };
  await measureCase(bench, {
    suite: 'pool',
    name: `${pool.name} [${pool.N},${pool.C},${pool.H},${pool.W}]`,
    gpuTime: true,
    kiln: bench.kiln
      ? () => {
          const x = randn([pool.N, pool.C, pool.H, pool.W], { device });
          return kilnRunner(bench.kiln!, [x], () => maxPool2d(x, 3, { stride: 2, padding: 1 }));
        }
      : null,
    tfjs: bench.tfjs ? () => bench.tfjs!.maxPool(pool) : null,
    torch: { kind: 'maxpool', N: pool.N, C: pool.C, H: pool.H, W: pool.W },
  });

  const avg: Nchw = { name: 'adaptive avg -> 1x1', N, C: 512, H: 7, W: 7 };
  await measureCase(bench, {
    suite: 'pool',
    name: `${avg.name} [${avg.N},${avg.C},${avg.H},${avg.W}]`,
    gpuTime: true,
    kiln: bench.kiln
      ? () => {
          const x = randn([avg.N, avg.C, avg.H, avg.W], { device });
          return kilnRunner(bench.kiln!, [x], () => adaptiveAvgPool2d(x, 1));
        }
      : null,
    tfjs: bench.tfjs ? () => bench.tfjs!.adaptiveAvgPool(avg) : null,
    torch: { kind: 'adaptive_avgpool', N: avg.N, C: avg.C, H: avg.H, W: avg.W },
  });
}
