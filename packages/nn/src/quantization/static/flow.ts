/**
 * Eager-mode static post-training quantization, PyTorch's flow:
 * `model.eval()` -> `fuseModules` -> `prepare(model, { qconfig })` (observers
 * on every quantizable layer's output) -> run calibration batches ->
 * `await convert(prepared)` (int8 layers with the observed scales).
 */
import { KilnError, noGrad, quantizePerChannel, type Tensor } from '@kiln/core';
import { Module, type RemovableHandle } from '../../module.js';
import { Conv2d } from '../../layers/conv.js';
import { Linear } from '../../layers/linear.js';
import { MaxPool2d, AdaptiveAvgPool2d } from '../../layers/pooling.js';
import { Flatten, Identity, Dropout } from '../../layers/shape.js';
import { Sequential, ModuleList, ModuleDict } from '../../layers/container.js';
import { MinMaxObserver, ObserverBase, PerChannelMinMaxObserver } from '../observer.js';
import { HistogramObserver } from '../observer-histogram.js';
import { copyModuleTree, replaceModules } from '../clone.js';
import { ConvReLU2d } from './fuse.js';
import { DeQuantStub, DeQuantize, FloatFunctional, QuantStub, Quantize } from './stubs.js';
import { QFunctional, QuantizedConv2d, QuantizedFlatten, QuantizedLinear, QuantizedPool2d, type QuantizedWeight } from './qmodules.js';

/** Observer factories for activations and weights (torch.ao.quantization.QConfig). */
export interface QConfig {
  /** Builds the observer of one layer's output. */
  activation: () => ObserverBase;
  /** Builds the observer that quantizes one layer's weight. */
  weight: () => ObserverBase;
}

/**
 * MinMax activations (quint8, per-tensor affine, reduce_range as x86
 * engines need) and per-channel symmetric qint8 weights: the qconfig the
 * parity tests share with PyTorch.
 */
export const minMaxQConfig: QConfig = {
  /** Builds the observer of one layer's output. */
  activation: () => new MinMaxObserver({ dtype: 'quint8', qscheme: 'per_tensor_affine', reduceRange: true }),
  /** Builds the observer that quantizes one layer's weight. */
  weight: () => new PerChannelMinMaxObserver({ dtype: 'qint8', qscheme: 'per_channel_symmetric', chAxis: 0 }),
};

/**
 * Histogram activations (quint8, reduce_range) and per-channel symmetric
 * qint8 weights: PyTorch's default x86 qconfig (get_default_qconfig('fbgemm')).
 */
export const histogramQConfig: QConfig = {
  /** Builds the observer of one layer's output. */
  activation: () => new HistogramObserver({ dtype: 'quint8', qscheme: 'per_tensor_affine', reduceRange: true }),
  /** Builds the observer that quantizes one layer's weight. */
  weight: () => new PerChannelMinMaxObserver({ dtype: 'qint8', qscheme: 'per_channel_symmetric', chAxis: 0 }),
};

/**
 * Histogram activations over the full quint8 range (no reduce_range) and
 * per-channel symmetric qint8 weights: PyTorch's onednn qconfig
 * (get_default_qconfig('onednn')). x86's reduce_range keeps activations to
 * 7 bits so fbgemm's 16-bit intermediate sums cannot saturate; Kiln's int8
 * convs and Linear accumulate in exact int32, so they lose nothing with the
 * eighth bit, and it halves the activations' rounding step.
 */
export const onednnQConfig: QConfig = {
  /** Builds the observer of one layer's output. */
  activation: () => new HistogramObserver({ dtype: 'quint8', qscheme: 'per_tensor_affine', reduceRange: false }),
  /** Builds the observer that quantizes one layer's weight. */
  weight: () => new PerChannelMinMaxObserver({ dtype: 'qint8', qscheme: 'per_channel_symmetric', chAxis: 0 }),
};

/** The quantized engines {@link getDefaultQConfig} knows (PyTorch's names). */
export type QEngine = 'x86' | 'fbgemm' | 'onednn';

/**
 * torch.ao.quantization.get_default_qconfig: {@link histogramQConfig} for
 * 'x86' and 'fbgemm', {@link onednnQConfig} for 'onednn'. 'qnnpack''s
 * per-tensor weights are not supported by convert(), which quantizes
 * weights per output channel.
 */
export function getDefaultQConfig(engine: QEngine = 'x86'): QConfig {
  if (engine === 'x86' || engine === 'fbgemm') return histogramQConfig;
  if (engine === 'onednn') return onednnQConfig;
  throw new KilnError('getDefaultQConfig', `expected 'x86', 'fbgemm' or 'onednn', got ${JSON.stringify(engine)}${(engine as string) === 'qnnpack' ? " (qnnpack's per-tensor weights are not supported: convert() quantizes weights per channel)" : ''}`);
}

/** Options of {@link prepare}. */
export interface PrepareOptions {
  /** Observer factories; default {@link minMaxQConfig}. */
  qconfig?: QConfig;
  /** Insert observers in this model instead of a copy. Default false. */
  inplace?: boolean;
}

const OBSERVER = 'activation_post_process';
const handles = new WeakMap<Module, RemovableHandle>();
/** The qconfig prepare() attached to a module (PyTorch's `module.qconfig`); an own attribute, so copies keep it. */
function qconfigOf(m: Module): QConfig {
  return (m as unknown as { qconfig: QConfig }).qconfig;
}

/** Modules whose output prepare() observes. */
function observed(m: Module): boolean {
  return m instanceof QuantStub || m instanceof Conv2d || m instanceof ConvReLU2d || m instanceof Linear || m instanceof FloatFunctional;
}

/**
 * Inserts an activation observer (child `activation_post_process`) on the
 * output of every QuantStub, Conv2d, ConvReLU2d, Linear and FloatFunctional.
 * Static post-training quantization is eval-only: a model in training mode
 * is rejected. Returns the prepared model (a copy unless `inplace`).
 */
export function prepare<M extends Module>(model: M, opts: PrepareOptions = {}): M {
  if (model.training) throw new KilnError('prepare', 'static post-training quantization expects an eval-mode model: call model.eval() (and fuseModules) first');
  const qconfig = opts.qconfig ?? minMaxQConfig;
  const root = opts.inplace ? model : copyModuleTree(model);
  const visit = (m: Module) => {
    if (observed(m)) {
      // Observers take their state from the first batch, on its device.
      const obs = qconfig.activation();
      m._modules.set(OBSERVER, obs);
      (m as unknown as { qconfig: QConfig }).qconfig = qconfig;
      if (m instanceof FloatFunctional) m._observe = (t: Tensor) => obs.call(t);
      // ConvReLU2d is a Sequential: it runs its new last child, the observer, itself.
      else if (!(m instanceof ConvReLU2d)) handles.set(m, m.registerForwardHook((_mod, _args, out) => { obs.call(out as Tensor); }));
      if (m instanceof ConvReLU2d) return;
    }
    for (const child of m._modules.values()) if (child && !(child instanceof ObserverBase)) visit(child);
  };
  visit(root);
  return root;
}

function observerOf(m: Module, path: string): ObserverBase {
  const obs = m._modules.get(OBSERVER) as ObserverBase | undefined;
  if (!obs) throw new KilnError('convert', `${path} (${m.constructor.name}) has no observer: call prepare() and calibrate before convert()`);
  if (!obs.calibrated) throw new KilnError('convert', `the observer of ${path} has not observed any data: run calibration batches through the prepared model before convert()`);
  return obs;
}

async function outputQParams(m: Module, path: string): Promise<{ scale: number; zeroPoint: number }> {
  const p = await observerOf(m, path).qparams();
  return { scale: p.scales[0]!, zeroPoint: p.zeroPoints[0]! };
}

/** The weight quantized per output channel by the qconfig's weight observer (symmetric, zero points 0). */
async function quantizeWeight(w: Tensor, qconfig: QConfig): Promise<QuantizedWeight> {
  const obs = qconfig.weight();
  obs.call(w);
  const p = await obs.qparams();
  obs.dispose();
  if (p.axis !== 0 || p.zeroPoints.some((z) => z !== 0)) throw new KilnError('convert', 'expected a per-channel symmetric weight observer (axis 0, zero points 0)');
  const q = noGrad(() => quantizePerChannel(w.detach(), p.scales, p.zeroPoints, 0, 'qint8'));
  const ints = q.intRepr();
  q.dispose();
  return { ints, scales: p.scales };
}

async function hostValues(t: Tensor | null): Promise<number[] | null> {
  return t ? Array.from(await t.toArray()) : null;
}

async function convertConv(conv: Conv2d, owner: Module, path: string, relu: boolean): Promise<QuantizedConv2d> {
  if (conv.groups !== 1) throw new KilnError('convert', `${path}: quantized convs support groups=1, got ${conv.groups}`);
  if (typeof conv.padding === 'string') throw new KilnError('convert', `${path}: quantized convs need numeric padding, got '${conv.padding}'`);
  const out = await outputQParams(owner, path);
  const w = await quantizeWeight(conv.effectiveTensor('weight') ?? conv.weight, qconfigOf(owner));
  const geometry = { kernel: conv.kernelSize, stride: conv.stride, padding: conv.padding, dilation: conv.dilation };
  return new QuantizedConv2d(w, await hostValues(conv.bias), geometry, out.scale, out.zeroPoint, relu);
}

/**
 * Replaces every observed layer with its quantized form, using the
 * observers' scales and zero points and per-channel int8 weights:
 * QuantStub -> Quantize, DeQuantStub -> DeQuantize, Conv2d / ConvReLU2d ->
 * QuantizedConv2d, Linear -> QuantizedLinear, FloatFunctional ->
 * QFunctional, MaxPool2d / AdaptiveAvgPool2d / Flatten -> their quantized
 * forms. Throws when a layer was not calibrated or has no quantized form.
 * Returns the converted model (a copy unless `inplace`).
 */
export async function convert<M extends Module>(model: M, opts: { inplace?: boolean } = {}): Promise<M> {
  const root = opts.inplace ? model : copyModuleTree(model);
  await replaceModules(root, async (m, path) => {
    if (m instanceof QuantStub) {
      const q = await outputQParams(m, path);
      return new Quantize(q.scale, q.zeroPoint);
    }
    if (m instanceof DeQuantStub) return new DeQuantize();
    if (m instanceof ConvReLU2d) return convertConv(m.conv, m, path, true);
    if (m instanceof Conv2d) return convertConv(m, m, path, false);
    if (m instanceof Linear) {
      const out = await outputQParams(m, path);
      const w = await quantizeWeight(m.effectiveTensor('weight') ?? m.weight, qconfigOf(m));
      return new QuantizedLinear(w, await hostValues(m.bias), out.scale, out.zeroPoint);
    }
    if (m instanceof FloatFunctional) {
      const out = await outputQParams(m, path);
      return new QFunctional(out.scale, out.zeroPoint);
    }
    if (m instanceof MaxPool2d) {
      if (m.ceilMode || m.returnIndices) throw new KilnError('convert', `${path}: quantized max pooling supports ceilMode=false without indices`);
      return new QuantizedPool2d('max', { kernelSize: m.kernelSize as [number, number], stride: m.stride as [number, number], padding: m.padding as [number, number] });
    }
    if (m instanceof AdaptiveAvgPool2d) {
      const s = m.outputSize;
      return new QuantizedPool2d('adaptiveAvg', { outputSize: typeof s === 'number' ? [s, s] : [s[0] ?? 1, s[1] ?? 1] });
    }
    if (m instanceof Flatten) return new QuantizedFlatten();
    if (m instanceof Identity || m instanceof Dropout) return null;
    if (m instanceof Sequential || m instanceof ModuleList || m instanceof ModuleDict) return null;
    if (m._parameters.size > 0 || m.constructor === Module) {
      throw new KilnError('convert', `unsupported module type ${m.constructor.name} at ${path}: static quantization converts Conv2d, ConvReLU2d, Linear, pooling, Flatten and the stubs`);
    }
    return null;
  });
  root.eval();
  return root;
}
