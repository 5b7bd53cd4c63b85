/**
 * Every distinct convolution of ResNet18: forward at batch 1, input- and
 * weight-gradient at batch 8 (batch 1 and a three-shape subset in --quick).
 * The gradients call the backend primitives directly, so each line is one
 * kernel family, not a whole autograd step.
 */
import { conv2d, empty, getBackend, randn } from '@kiln/core';
import type { Conv2dParams } from '@kiln/core';
import { kilnRunner, measureCase, type Bench } from '../bench.js';
import { QUICK_CONVS, RESNET18_CONVS, convFlop, convOut, type ConvDirection, type ConvShape, type Runner } from '../cases.js';

function kilnConv(bench: Bench, c: ConvShape, dir: ConvDirection, N: number): Runner {
  // The gradient primitives through core's Backend interface, as the autograd formulas call them.
  const backend = getBackend('webgpu');
  const device = 'webgpu';
  const [oh, ow] = convOut(c);
  const x = randn([N, c.C, c.H, c.W], { device });
  const w = randn([c.O, c.C, c.k, c.k], { device });
  const dy = randn([N, c.O, oh, ow], { device });
  const p: Conv2dParams = { stride: [c.s, c.s], padding: [c.p, c.p], dilation: [1, 1], groups: 1 };
  const op =
    dir === 'forward'
      ? () => conv2d(x, w, null, { stride: c.s, padding: c.p })
      : dir === 'input_grad'
        ? () => {
            const dx = empty(x.shape, { device });
            backend.conv2dBackwardInput(dy._view(), w._view(), dx._view(), p);
            return dx;
          }
        : () => {
            const dw = empty(w.shape, { device });
            backend.conv2dBackwardWeight(x._view(), dy._view(), dw._view(), p);
            return dw;
          };
  return kilnRunner(bench.kiln!, [x, w, dy], op);
}

export async function convSuite(bench: Bench): Promise<void> {
  const shapes = bench.opts.quick ? QUICK_CONVS : RESNET18_CONVS;
  const gradBatch = bench.opts.quick ? 1 : 8;
  for (const dir of ['forward', 'input_grad', 'weight_grad'] as const) {
    const N = dir === 'forward' ? 1 : gradBatch;
    for (const c of shapes) {
      await measureCase(bench, {
        suite: `conv_${dir}`,
        name: `${c.name} N=${N}`,
        flop: convFlop(c, N),
        gpuTime: true,
        kiln: bench.kiln ? () => kilnConv(bench, c, dir, N) : null,
        tfjs: bench.tfjs ? () => bench.tfjs!.conv(c, dir, N) : null,
        torch: { kind: 'conv', dir, N, C: c.C, H: c.H, W: c.W, O: c.O, k: c.k, s: c.s, p: c.p },
      });
    }
  }
}
