/**
 * The `quant` suite: int8 vs float32 on Kiln's WebGPU kernels.
 * - GEMM 1024³ and 4096×512×1000 (ResNet18's fc at batch 4096): float32
 *   matmul vs the int8 GEMM (uint8 activations x int8 weights, int32
 *   accumulation, float output), with dot4I8Packed and with the extractBits
 *   fallback (tests/quant.gemm.test.ts checks both against the CPU reference).
 * - ResNet18 eval at batch 1 (and 8 in a full run) on the benchmark's
 *   weights: float32 Kiln (BN folded, fused epilogues) vs TF.js WebGPU
 *   (float32); the statically quantized model (fuseModel, MinMax calibration
 *   on two images of the input batch, convert) vs PyTorch's own quantized
 *   resnet18 on the CPU (torchvision.models.quantization, the same qconfig
 *   and calibration, onednn); and the int8 model with its convs forced back
 *   onto the im2col + int8 GEMM route, to show what the fused int8 conv gained.
 * - Model bytes: state-dict bytes of the float32 and the int8 model.
 * What limits int8 ResNet18 on lavapipe: the int8 convs are fused now
 * (implicit GEMM on packed activations, requantized in the epilogue; the
 * 3-channel stem padded to 4), so what is left is the
 * plumbing between them: the requantizing residual add and the pooling are
 * composed from generic ops running through the packed-int8 unpack/pack
 * shim, several passes per block.
 */
import { fromArray, noGrad, quantizedConvOverride, quantizedMatmul, randint, randn, tensor, tidy, type Tensor } from '@kiln/core';
import { int8GemmOverride } from '@kiln/kernels';
import { quantization } from '@kiln/nn';
import { quantizableResnet18, resnet18 } from '@kiln/resnet';
import { kilnRunner, measureCase, outOfTime, type Bench } from '../bench.js';
import { RESNET18_FLOP_PER_IMAGE } from '../cases.js';
import { log, type PeerResult } from '../report.js';
import type { TfjsResNet18 } from '../peers/tfjs.js';
import { inputBatch } from '../weights.js';

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

  // ResNet18 on the benchmark's weights (PyTorch's seeded torchvision model when it wrote the
  // assets): float32 Kiln vs TF.js WebGPU, and int8 Kiln (fused convs, and the im2col route
  // they replaced) vs PyTorch's own quantized resnet18 on the CPU.
  const assets = bench.assets();
  const params = new Map([...assets.params].map(([k, v]) => [k, fromArray(v.data, v.shape, { device: 'webgpu' })]));
  const float = resnet18({ device: 'webgpu' }).eval();
  float.loadStateDict(params, { strict: false });
  const q = quantizableResnet18({ device: 'webgpu' });
  q.loadStateDict(params, { strict: false });
  for (const t of params.values()) t.dispose();
  q.eval().fuseModel();
  const prepared = quantization.prepare(q, { inplace: true });
  const calib = inputBatch(assets, 2);
  tidy(() => { prepared.call(fromArray(calib.data, calib.shape, { device: 'webgpu' })); });
  const int8 = await quantization.convert(prepared, { inplace: true });
  const floatBytes = quantization.stateDictBytes(float);
  const int8Bytes = quantization.stateDictBytes(int8);
  bench.reporter.emit({ suite: 'quant', case: 'resnet18 model bytes', floatBytes, int8Bytes, ratio: Number((floatBytes / int8Bytes).toPrecision(3)) });
  log(`quant: resnet18 state dict ${floatBytes} B fp32 -> ${int8Bytes} B int8`);
  let tfModel: TfjsResNet18 | null = null;
  try {
    tfModel = bench.tfjs?.resnet(assets) ?? null;
  } catch (e) {
    log(`quant: tfjs resnet18: ${(e as Error).message}`);
  }
  const torch = assets.source === 'torch';
  const noTorch: Record<string, () => Promise<PeerResult>> = bench.torch && assets.unavailable ? { torch: async () => ({ error: `PyTorch assets unavailable: ${assets.unavailable}` }) } : {};
  const variants = [
    { label: 'fp32', model: float, conv: undefined, tfjs: true, torchKind: 'resnet_forward' },
    { label: 'int8', model: int8, conv: undefined, tfjs: false, torchKind: 'resnet_quantized_forward' },
    { label: 'int8 (im2col convs)', model: int8, conv: 'im2col' as const, tfjs: false, torchKind: null },
  ];
  for (const batch of bench.opts.quick ? [1] : [1, 8]) {
    const input = inputBatch(assets, batch);
    for (const v of variants) {
      const name = `resnet18 eval N=${batch} ${v.label}`;
      if (outOfTime(bench, 'quant', name)) continue;
      if (v.conv) quantizedConvOverride.path = v.conv;
      try {
        await measureCase(bench, {
          suite: 'quant', name, flop: RESNET18_FLOP_PER_IMAGE * batch,
          kiln: () => {
            const x = fromArray(input.data, input.shape, { device: 'webgpu' });
            return kilnRunner(backend, [x], () => noGrad(() => v.model.call(x)));
          },
          tfjs: v.tfjs && tfModel ? () => tfModel!.forwardRunner(batch) : null,
          torch: v.torchKind && torch ? { kind: v.torchKind, batch } : null,
          others: v.torchKind ? noTorch : {},
          extra: { weights: assets.source },
        });
      } finally {
        delete quantizedConvOverride.path;
      }
    }
  }
  tfModel?.dispose();
  float.releaseFolded();
  float.dispose();
  int8.dispose();
}
