/**
 * ResNet18 inference (eval, BN folded, fused conv epilogues) at batch 1 and
 * 8, against TF.js WebGPU and TF.js WASM (same folded weights), ONNX Runtime CPU (torch's
 * and Kiln's ONNX export of the same model) and PyTorch CPU (the model itself). Before
 * timing, every implementation's logits are compared: Kiln against
 * PyTorch's reference logits, each peer against Kiln.
 */
import { fromArray } from '@kiln/core';
import { measureCase, outOfTime, type Bench } from '../bench.js';
import { RESNET18_FLOP_PER_IMAGE, type Runner } from '../cases.js';
import { log, timingFields } from '../report.js';
import { timeCpuAsync } from '../timing.js';
import { OrtPeer } from '../peers/ort.js';
import type { TfjsResNet18 } from '../peers/tfjs.js';
import { KilnResNet18Eval } from '../resnet18.js';
import { inputBatch, maxAbsDiff } from '../weights.js';

const sig = (x: number) => Number(x.toPrecision(3));

export async function resnetSuite(bench: Bench): Promise<void> {
  const assets = bench.assets();
  const batches = bench.opts.quick ? [1] : [1, 8];
  const kiln = bench.kiln ? new KilnResNet18Eval(assets, 'webgpu') : null;
  let tfModel: TfjsResNet18 | null = null;
  let ort: OrtPeer | null = null;
  let ortError: string | null = null;
  try {
    tfModel = bench.tfjs?.resnet(assets) ?? null;
  } catch (e) {
    log(`tfjs resnet18: ${(e as Error).message}`);
  }
  // TF.js WASM: its weights are created while its backend is the active one.
  let wasmModel: TfjsResNet18 | null = null;
  if (bench.tfjsWasm) {
    try {
      await bench.tfjsWasm.activate();
      wasmModel = bench.tfjsWasm.resnet(assets);
    } catch (e) {
      log(`tfjs-wasm resnet18: ${(e as Error).message}`);
    }
    await bench.tfjs?.activate();
  }
  if (bench.opts.peers.includes('ort')) {
    try {
      ort = await OrtPeer.create(assets);
    } catch (e) {
      ortError = (e as Error).message;
    }
  }

  for (const batch of batches) {
    if (outOfTime(bench, 'resnet18_forward', `resnet18 eval N=${batch}`)) continue;
    const input = inputBatch(assets, batch);
    // Correctness first: all of them must be running the same network.
    const diffs: Record<string, number | string> = {};
    let kilnLogits: Float32Array | null = null;
    if (kiln) {
      try {
        const x = fromArray(input.data, input.shape, { device: 'webgpu' });
        const y = kiln.forward(x);
        kilnLogits = (await y.toArray()) as Float32Array;
        x.dispose();
        y.dispose();
        if (assets.torchLogits) diffs.kiln_vs_torch_reference = sig(maxAbsDiff(kilnLogits, assets.torchLogits.data.subarray(0, batch * 1000)));
      } catch (e) {
        diffs.kiln = `error: ${(e as Error).message.slice(0, 200)}`;
      }
    }
    const reference = kilnLogits ?? assets.torchLogits?.data.subarray(0, batch * 1000) ?? null;
    const against = kilnLogits ? 'kiln' : 'torch_reference';
    if (reference && tfModel) {
      try {
        diffs[`tfjs_vs_${against}`] = sig(maxAbsDiff(await tfModel.logits(batch), reference));
      } catch (e) {
        diffs.tfjs = `error: ${(e as Error).message.slice(0, 200)}`;
      }
    }
    if (reference && wasmModel) {
      try {
        diffs[`tfjs_wasm_vs_${against}`] = sig(maxAbsDiff(await wasmModel.logits(batch), reference));
      } catch (e) {
        diffs.tfjs_wasm = `error: ${(e as Error).message.slice(0, 200)}`;
      }
    }
    if (reference && ort) {
      // torch's export and Kiln's own, run by the same runtime: each must agree with Kiln, and with each other.
      let torchExport: Float32Array | null = null;
      if (ort.hasTorchExport) {
        torchExport = await ort.forward(batch);
        diffs[`ort_vs_${against}`] = sig(maxAbsDiff(torchExport, reference));
      } else diffs.ort = `error: ${ort.torchExportError}`;
      if (ort.hasKilnExport) {
        const kilnExport = await ort.forwardKilnExport(batch);
        diffs[`ort_kiln_export_vs_${against}`] = sig(maxAbsDiff(kilnExport, reference));
        if (torchExport) diffs.ort_kiln_export_vs_ort_torch_export = sig(maxAbsDiff(kilnExport, torchExport));
      } else diffs.ort_kiln_export = `error: ${ort.kilnExportError}`;
    }

    await measureCase(bench, {
      suite: 'resnet18_forward',
      name: `resnet18 eval N=${batch}`,
      flop: RESNET18_FLOP_PER_IMAGE * batch,
      kiln: kiln
        ? (): Runner => {
            const xx = fromArray(input.data, input.shape, { device: 'webgpu' });
            return {
              run: async () => {
                kiln.forward(xx).dispose();
                await bench.kiln!.sync();
              },
              dispose: () => xx.dispose(),
            };
          }
        : null,
      tfjs: tfModel ? () => tfModel!.forwardRunner(batch) : null,
      tfjsWasm: wasmModel ? () => wasmModel!.forwardRunner(batch) : null,
      torch: assets.source === 'torch' ? { kind: 'resnet_forward', batch } : null,
      others: {
        ...(ort
          ? {
              ort: async () =>
                ort!.hasTorchExport
                  ? timingFields(await timeCpuAsync(`ort resnet18 N=${batch}`, () => ort!.forward(batch), bench.policy))
                  : { error: ort!.torchExportError! },
              ort_kiln_export: async () =>
                ort!.hasKilnExport
                  ? timingFields(await timeCpuAsync(`ort (kiln export) resnet18 N=${batch}`, () => ort!.forwardKilnExport(batch), bench.policy))
                  : { error: ort!.kilnExportError! },
            }
          : ortError && bench.opts.peers.includes('ort')
            ? { ort: async () => ({ error: ortError! }) }
            : {}),
        // The peer that needs PyTorch's assets says why it has no time, instead of an empty cell.
        ...(bench.torch && assets.unavailable ? { torch: async () => ({ error: `PyTorch assets unavailable: ${assets.unavailable}` }) } : {}),
      },
      extra: { maxAbsDiff: diffs, weights: assets.source },
    });
  }
  kiln?.dispose();
  tfModel?.dispose();
  wasmModel?.dispose();
  await ort?.dispose();
}
