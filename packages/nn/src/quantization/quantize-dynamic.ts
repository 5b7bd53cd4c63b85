/**
 * quantizeDynamic (torch.ao.quantization.quantize_dynamic) and the size
 * report that shows what it saved.
 */
import { KilnError, noGrad, quantizePerChannel, quantizePerTensor, tidy, type Tensor } from '@kiln/core';
import { Module } from '../module.js';
import { Linear } from '../layers/linear.js';
import { DynamicQuantizedLinear } from './dynamic-linear.js';
import { MinMaxObserver, PerChannelMinMaxObserver, type ObserverBase } from './observer.js';
import { copyModuleTree, replaceModules } from './clone.js';

/** A Module subclass (its constructor). */
export type ModuleClass = abstract new (...args: never[]) => Module;

/** Options of {@link quantizeDynamic}, as quantize_dynamic's qconfig_spec / dtype. */
export interface QuantizeDynamicOptions {
  /** Module classes to quantize (PyTorch's `{nn.Linear}`); Kiln supports Linear. Default [Linear]. */
  types?: ModuleClass[];
  /** Weight dtype: 'qint8' (PyTorch's float16 option is not offered). */
  dtype?: string;
  /** Weight observer scheme: 'per_tensor' (PyTorch's default_dynamic_qconfig) or 'per_channel' (per_channel_dynamic_qconfig). */
  weightScheme?: 'per_tensor' | 'per_channel';
}

/** The float weight a layer really uses (its forward pre-hooks' value, e.g. pruning's orig * mask). */
function effectiveWeight(m: Linear): Tensor {
  return m.effectiveTensor('weight') ?? m.weight;
}

/**
 * A dynamically quantized copy of a float Linear: weights observed
 * (MinMax, per-tensor symmetric; or per-channel symmetric) and quantized
 * to qint8 as PyTorch's `Linear.from_float`.
 */
export async function dynamicLinearFromFloat(m: Linear, scheme: 'per_tensor' | 'per_channel' = 'per_tensor'): Promise<DynamicQuantizedLinear> {
  const w = effectiveWeight(m);
  const observer: ObserverBase = scheme === 'per_tensor'
    ? new MinMaxObserver({ dtype: 'qint8', qscheme: 'per_tensor_symmetric' })
    : new PerChannelMinMaxObserver({ dtype: 'qint8', qscheme: 'per_channel_symmetric', chAxis: 0 });
  observer.call(w);
  const p = await observer.qparams();
  observer.dispose();
  const q = noGrad(() => (scheme === 'per_tensor'
    ? quantizePerTensor(w.detach(), p.scales[0]!, p.zeroPoints[0]!, 'qint8')
    : quantizePerChannel(w.detach(), p.scales, p.zeroPoints, 0, 'qint8')));
  const bias = m.bias ? noGrad(() => tidy(() => m.bias!.detach().clone())) : null;
  const ints = q.intRepr();
  q.dispose();
  return new DynamicQuantizedLinear(ints, { scales: p.scales, zeroPoints: p.zeroPoints, axis: scheme === 'per_tensor' ? -1 : 0 }, bias);
}

/**
 * Dynamic quantization, PyTorch's
 * `torch.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)`:
 * `await quantizeDynamic(model, { types: [Linear], dtype: 'qint8' })` returns
 * a new model whose Linear layers are {@link DynamicQuantizedLinear} (int8
 * weights, activations quantized per call); the float model is unchanged
 * (the copy shares the tensors of the layers it keeps). Async because the
 * weights' scales are read back from the device.
 */
export async function quantizeDynamic<M extends Module>(model: M, opts: QuantizeDynamicOptions = {}): Promise<M> {
  const op = 'quantizeDynamic';
  if (!(model instanceof Module)) throw new KilnError(op, 'expected a Module');
  const dtype = opts.dtype ?? 'qint8';
  if (dtype !== 'qint8') throw new KilnError(op, `expected dtype 'qint8', got '${dtype}' (Kiln's dynamic quantization is int8 only)`);
  const types = opts.types ?? [Linear];
  for (const t of types) {
    if (t !== Linear && !(t.prototype instanceof Linear)) {
      throw new KilnError(op, `unsupported module type ${t.name}: dynamic quantization supports Linear`);
    }
  }
  const scheme = opts.weightScheme ?? 'per_tensor';
  const matches = (m: Module) => m instanceof Linear && types.some((t) => m instanceof t);
  if (matches(model)) return (await dynamicLinearFromFloat(model as unknown as Linear, scheme)) as unknown as M;
  const copy = copyModuleTree(model);
  await replaceModules(copy, (m) => (matches(m) ? dynamicLinearFromFloat(m as Linear, scheme) : null));
  return copy;
}
