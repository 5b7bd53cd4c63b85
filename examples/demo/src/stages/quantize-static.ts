import { noGrad, tidy, type Tensor } from '@kiln/core';
import { quantization, type Module } from '@kiln/nn';
import { QuantizableResNet, type ResNet } from '@kiln/resnet';
import type { DemoContext } from '../context.js';
import { evalBatches, evalTensors } from '../data/images.js';
import { disposing } from '../train-loop.js';
import { cloneResNet } from './prune.js';

/** Training images the static model's activation ranges are calibrated on. */
export const CALIBRATION_IMAGES = 256;

/**
 * Stage 5, static half: the whole network in int8, PyTorch's eager-mode
 * post-training flow on torchvision's quantizable ResNet18 — a copy of the
 * fine-tuned model wrapped as `QuantizableResNet` (QuantStub/DeQuantStub,
 * `add_relu` residuals), `fuseModel()` (conv+bn(+relu)), `prepare` with
 * PyTorch's onednn qconfig (histogram activation observers over the full
 * quint8 range, per-channel weights), calibration forwards on training
 * images (eval transform), `convert`. Not x86's reduce_range: Kiln's int8
 * layers accumulate in exact int32, and 7-bit activations cost this model
 * 1.2 points of top-1 against 0.2 with 8 bits (MinMax observers: 1.2 and
 * 0.4; the README's "The int8 bar").
 */
export async function quantizeStaticStage(ctx: DemoContext, model: ResNet): Promise<Module> {
  const { io, device, target } = ctx;
  const n = Math.min(CALIBRATION_IMAGES, target.train.indices.length);
  io.log(`  static int8 of the whole network: QuantizableResNet → fuseModel → prepare (onednn qconfig: histogram observers, full-range quint8) → ${n} calibration images → convert`);
  const float = new QuantizableResNet(cloneResNet(model, device)).eval();
  float.fuseModel();
  // In place: the copy is this stage's own, and prepare/convert's copies would share its tensors.
  const prepared = quantization.prepare(float, { qconfig: quantization.onednnQConfig, inplace: true });
  const calib = { ...target.train, indices: target.train.indices.slice(0, n), labels: target.train.labels.slice(0, n) };
  const values = evalTensors(calib, ctx.pipe);
  noGrad(() => {
    for (const b of disposing(evalBatches(calib, values, 64, ctx.pipe.size, device))) tidy(() => prepared.call(b.images) as Tensor);
  });
  return (await quantization.convert(prepared, { inplace: true })).eval();
}
