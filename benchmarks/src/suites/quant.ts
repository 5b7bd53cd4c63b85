/**
 * The `quant` suite: int8 vs float32 on Kiln's WebGPU kernels.
 * - GEMM 1024³ and 4096×512×1000 (ResNet18's fc at batch 4096): float32
 *   matmul vs the int8 GEMM (uint8 activations x int8 weights, int32
 *   accumulation, float output), with dot4I8Packed and with the extractBits
 *   fallback (tests/quant.gemm.test.ts checks both against the CPU reference).
 * - ResNet18 eval at batch 1 (and 8 in a full run): float32 Kiln (BN
 *   folded, fused epilogues) vs the statically quantized model (fuseModel,
 *   MinMax calibration on one random batch, convert).
 * - Model bytes: state-dict bytes of the float32 and the int8 model.
 * Peers: none in this suite (TF.js has no int8 WebGPU path; PyTorch's
 * quantized models are not yet wired into the PyTorch peer).
 * What limits int8 ResNet18 on lavapipe today is not the int8 GEMM (faster
 * than float32 here) but the plumbing around it: the im2col gather and the
 * requantizing residual add / pooling are composed from generic ops that run
 * through the packed-int8 unpack/pack shim, several passes per conv.
 */
import { noGrad, quantizedMatmul, randint, randn, tensor, tidy, type Tensor } from '@kiln/core';
import { int8GemmOverride } from '@kiln/kernels';
import { quantization } from '@kiln/nn';
import { quantizableResnet18, resnet18 } from '@kiln/resnet';
import { kilnRunner, measureCase, outOfTime, type Bench } from '../bench.js';
import { RESNET18_FLOP_PER_IMAGE } from '../cases.js';
import { log } from '../report.js';

/** The int8 GEMM's operands for out[M, N] = a[M, K] · w[N, K]ᵀ on the device. */
function int8Operands(M: number, K: number, N: number): Tensor[] {
  const dev = 'webgpu';
  return [
    randint(0, 256, [M, K], { dtype: 'uint8', device: dev }),
    randint(-128, 128, [N, K], { dtype: 'int8', device: dev }),
    tensor([3], { dtype: 'int32', device: dev }),
    randint(-1000, 1000, [N], { dtype: 'int32', device: dev }),
    randn([N], { device: dev }).abs().mul(1e-4),
  ];
}

function int8Gemm(t: Tensor[]): Tensor {
  const [a, w, zp, colSum, scale] = t as [Tensor, Tensor, Tensor, Tensor, Tensor];
  return quantizedMatmul(a, w, { aZeroPoint: zp, bColSum: colSum, scale, out: 'float32' });
}

export async function quantSuite(bench: Bench): Promise<void> {
  if (!bench.kiln) {
    bench.reporter.emit({ suite: 'quant', case: '(suite)', error: `kiln webgpu unavailable: ${bench.kilnError}` });
    return;
  }
  const backend = bench.kiln;
  const shapes: [number, number, number][] = bench.opts.quick ? [[512, 512, 512]] : [[1024, 1024, 1024], [4096, 512, 1000]];
  for (const [M, K, N] of shapes) {
    const shape = `${M}x${K}x${N}`;
    await measureCase(bench, {
      suite: 'quant', name: `gemm fp32 ${shape}`, flop: 2 * M * K * N, gpuTime: true,
      kiln: () => {
        const a = randn([M, K], { device: 'webgpu' });
        const b = randn([K, N], { device: 'webgpu' });
        return kilnRunner(backend, [a, b], () => a.matmul(b));
      },
    });
    for (const dot of ['dot4', 'bits'] as const) {
      int8GemmOverride.dot = dot;
      try {
        await measureCase(bench, {
          suite: 'quant', name: `gemm int8 ${shape} (${dot === 'dot4' ? 'dot4I8Packed' : 'extractBits fallback'})`, flop: 2 * M * K * N, gpuTime: true,
          kiln: () => {
            const t = int8Operands(M, K, N);
            return kilnRunner(backend, t, () => int8Gemm(t));
          },
        });
      } finally {
        delete int8GemmOverride.dot;
      }
    }
  }

  // ResNet18: float32 vs int8 (static post-training quantization).
  const float = resnet18({ device: 'webgpu' }).eval();
  const q = quantizableResnet18({ device: 'webgpu' });
  q.loadStateDict(float.stateDict());
  q.eval().fuseModel();
  const prepared = quantization.prepare(q, { inplace: true });
  tidy(() => { prepared.call(randn([2, 3, 224, 224], { device: 'webgpu' })); });
  const int8 = await quantization.convert(prepared, { inplace: true });
  const floatBytes = quantization.stateDictBytes(float);
  const int8Bytes = quantization.stateDictBytes(int8);
  bench.reporter.emit({ suite: 'quant', case: 'resnet18 model bytes', floatBytes, int8Bytes, ratio: Number((floatBytes / int8Bytes).toPrecision(3)) });
  log(`quant: resnet18 state dict ${floatBytes} B fp32 -> ${int8Bytes} B int8`);
  for (const batch of bench.opts.quick ? [1] : [1, 8]) {
    for (const [label, model] of [['fp32', float], ['int8', int8]] as const) {
      const name = `resnet18 eval N=${batch} ${label}`;
      if (outOfTime(bench, 'quant', name)) continue;
      await measureCase(bench, {
        suite: 'quant', name, flop: RESNET18_FLOP_PER_IMAGE * batch,
        kiln: () => {
          const x = randn([batch, 3, 224, 224], { device: 'webgpu' });
          return kilnRunner(backend, [x], () => noGrad(() => model.call(x)));
        },
      });
    }
  }
  float.releaseFolded();
  float.dispose();
  int8.dispose();
}
