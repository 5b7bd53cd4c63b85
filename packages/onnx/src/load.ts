// The other direction: weights of an .onnx file (PyTorch's export, or
// Kiln's) loaded into a Kiln model with the same module tree. Conv, Gemm and
// BatchNormalization nodes name their module by scope (`/layer1/layer1.0/conv1/Conv`),
// so their initializers go to `layer1.0.conv1.weight` whatever the
// initializer itself is called. A conv that carries a bias in the file but
// not in the model had a BatchNorm folded into it (torch.onnx.export's
// constant folding): the BatchNorm after it becomes the identity plus that bias.
import { KilnError, fromArray, noGrad, type Tensor } from '@kiln/core';
import type { Module } from '@kiln/nn';
import { onnxInitializers, readOnnx, type OnnxInitializer } from './read.js';

/** Options of {@link loadOnnxWeights}. */
export interface LoadOnnxWeightsOptions {
  /**
   * The BatchNorm module path that follows the conv at `convPath`, for a conv
   * whose BatchNorm was folded into it. Default: torchvision's naming
   * (`conv1` -> `bn1`, `downsample.0` -> `downsample.1`).
   */
  batchNormAfter?: (convPath: string) => string | null;
}

/** The module path a scoped node name refers to: `/layer1/layer1.0/relu_1/Relu` -> `layer1.0.relu`. */
export function modulePathOfNode(nodeName: string): string {
  const segments = nodeName.split('/').filter(Boolean).slice(0, -1);
  let path = '';
  for (const raw of segments) {
    const seg = raw.replace(/_\d+$/, '');
    const dot = seg.lastIndexOf('.');
    // `layer1.0` below `layer1` is child `0` of it; other segments are attribute names.
    const child = dot > 0 && path.endsWith(seg.slice(0, dot)) ? seg.slice(dot + 1) : seg;
    path = path ? `${path}.${child}` : child;
  }
  return path;
}

function defaultBatchNormAfter(convPath: string): string | null {
  const m = /^(.*?)(conv)(\d+)$/.exec(convPath);
  if (m) return `${m[1]}bn${m[3]}`;
  if (convPath.endsWith('.0')) return `${convPath.slice(0, -2)}.1`;
  return null;
}

/**
 * Copies the weights of an .onnx model into `model` (in place, without
 * autograd) and returns the state-dict keys it wrote. Every module the
 * file's Conv/Gemm/BatchNormalization nodes name must exist in the model
 * with the same shapes.
 * @throws KilnError when a node names a module or tensor the model lacks, or a shape differs.
 */
export function loadOnnxWeights(model: Module, bytes: Uint8Array, opts: LoadOnnxWeightsOptions = {}): string[] {
  const file = readOnnx(bytes);
  const inits = onnxInitializers(file);
  const sd = new Map<string, Tensor>([...model.namedParameters(), ...model.namedBuffers()]);
  const bnAfter = opts.batchNormAfter ?? defaultBatchNormAfter;
  const written: string[] = [];
  const put = (key: string, src: OnnxInitializer | Float32Array, shape?: readonly number[]) => {
    const dst = sd.get(key);
    if (!dst) throw new KilnError('loadOnnxWeights', `the model has no tensor '${key}'`);
    const data = src instanceof Float32Array ? src : src.data;
    const s = src instanceof Float32Array ? shape! : src.shape;
    if (s.join() !== dst.shape.join()) throw new KilnError('loadOnnxWeights', `'${key}': the file has shape [${s.join(', ')}], the model [${dst.shape.join(', ')}]`);
    noGrad(() => {
      const t = fromArray(data, [...s], { device: dst.device, dtype: dst.dtype });
      dst.copy_(t);
      t.dispose();
    });
    written.push(key);
  };
  const init = (name: string | undefined, node: string): OnnxInitializer => {
    const t = name ? inits.get(name) : undefined;
    if (!t) throw new KilnError('loadOnnxWeights', `node '${node}' reads '${name}', which is not an initializer`);
    return t;
  };
  for (const n of file.graph.nodes) {
    const path = modulePathOfNode(n.name);
    const key = (k: string) => (path ? `${path}.${k}` : k);
    if (n.opType === 'Conv') {
      put(key('weight'), init(n.input[1], n.name));
      if (!n.input[2]) continue;
      const bias = init(n.input[2], n.name);
      if (sd.has(key('bias'))) {
        put(key('bias'), bias);
        continue;
      }
      const bn = bnAfter(path);
      if (!bn || !sd.has(`${bn}.running_var`)) throw new KilnError('loadOnnxWeights', `conv '${path}' has a folded bias but no BatchNorm after it was found (${bn ?? 'none'})`);
      const C = bias.shape[0]!;
      put(`${bn}.weight`, new Float32Array(C).fill(1), [C]);
      put(`${bn}.bias`, bias);
      put(`${bn}.running_mean`, new Float32Array(C), [C]);
      // var + eps = 1: the BatchNorm passes the conv's output through unchanged.
      const eps = (model.getSubmodule(bn) as unknown as { eps: number }).eps;
      put(`${bn}.running_var`, new Float32Array(C).fill(1 - eps), [C]);
    } else if (n.opType === 'Gemm') {
      const transB = n.attribute.find((a) => a.name === 'transB')?.i ?? 0;
      const w = init(n.input[1], n.name);
      if (transB) put(key('weight'), w);
      else put(key('weight'), transpose2d(w), [w.shape[1]!, w.shape[0]!]);
      if (n.input[2]) put(key('bias'), init(n.input[2], n.name));
    } else if (n.opType === 'BatchNormalization') {
      ['weight', 'bias', 'running_mean', 'running_var'].forEach((k, i) => put(key(k), init(n.input[i + 1], n.name)));
    }
  }
  return written;
}

function transpose2d(t: OnnxInitializer): Float32Array {
  const [r, c] = t.shape as [number, number];
  const out = new Float32Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = t.data[i * c + j]!;
  return out;
}
