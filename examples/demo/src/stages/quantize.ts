import { Linear, quantizeDynamic, type Module } from '@kiln/nn';
import type { ResNet } from '@kiln/resnet';
import type { DemoContext } from '../context.js';

/** Names of the int8 variants in the tables (the bars look them up). */
export const DYNAMIC_VARIANT = 'int8 dynamic (fc)';
/** The statically quantized whole network. */
export const STATIC_VARIANT = 'int8 static';

/**
 * Stage 5, dynamic half: the seed's
 * `torch.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)`
 * — int8 weights for `fc`, activations quantized per call. Returns the
 * quantized copy (it shares every other layer's tensors with `model`) and
 * how to free what is its own.
 */
export async function quantizeDynamicStage(ctx: DemoContext, model: ResNet): Promise<{ model: ResNet; dispose(): void }> {
  ctx.io.log('[5/7] quantization: dynamic int8 of the Linear head (quantizeDynamic(model, { types: [Linear], dtype: "qint8" }))');
  const q = await quantizeDynamic(model, { types: [Linear], dtype: 'qint8' });
  return { model: q, dispose: () => (q.fc as Module).dispose() };
}
