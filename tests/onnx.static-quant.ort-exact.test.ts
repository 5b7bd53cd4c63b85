// A statically quantized model and its ONNX export compute the same integers
// in onnxruntime (onnxruntime-node, CPU execution provider, default graph
// optimizations: QLinearConv, QGemm, QLinearGlobalAveragePool, uint8 MaxPool):
// every quantized activation of the exported graph (each QuantizeLinear
// output, made a graph output of a copy of the model) equals Kiln's integers
// for that layer with 0 steps of difference, and the logits are bit-equal,
// so the predictions are identical. Two models: a small conv-bn-relu / add /
// pooling / linear net, and a calibrated ResNet18 on 32x32 inputs with 5
// classes (seeded weights, BatchNorm statistics drawn so folding matters,
// three calibration batches, 200 test inputs). Both backends.
//
// What it guards: Kiln's int8 conv / linear requantize as QLinearConv / QGemm
// define it (int32 bias at x_scale * w_scale, float32 multiplier, round half
// to even; core's requant.ts) and the export writes Kiln's quantizer (product
// by the reciprocal of the scale) for the input and the residual add. Before
// that, onnxruntime's integers drifted from Kiln's from the stem on (8 inputs:
// 31 of 131072 stem integers, 1-13 steps apart by layer4, 33 of 40 fc
// outputs); with only the conv / fc rule fixed, one input integer of 196608
// (x * (1 / s) against QuantizeLinear's x / s) still changed 4 of 320 fc
// outputs on 64 inputs. Takes ~2 minutes on the CPU backend (its int8 conv is
// the plain reference loop).
import { afterAll, beforeAll, expect, it } from 'vitest';
import * as kiln from '@kiln/core';
import {
  AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Flatten, Linear, MaxPool2d, Module, ReLU, quantization as q, skipInit,
} from '@kiln/nn';
import { quantizableResnet18 } from '@kiln/resnet';
import { exportOnnx, readOnnx, type AttributeProtoData } from '@kiln/onnx';
import { encodeModel } from '../packages/onnx/src/proto/codec.js';
import { describeEachBackend, webgpuStatus } from './helpers/env.js';
import { runOrt } from '../packages/onnx/test/tools.js';
import { randomizeBatchNorm } from './prune.helpers.js';

const webgpu = await webgpuStatus();

/** Inputs per Kiln forward. */
const SLICE = 10;

/** The traced ops that end in a QuantizeLinear in the export, in graph order. */
const QUANTIZED_OUTPUTS = new Set(['quantize', 'quantizedConv2d', 'quantizedAdd', 'quantizedMaxPool2d', 'quantizedAdaptiveAvgPool2d', 'quantizedLinear']);

/** The small net: every piece a quantized ResNet uses, at sizes where a bug cannot hide in a corner. */
class SmallNet extends Module {
  quant = new q.QuantStub();
  conv1: Conv2d;
  bn1: BatchNorm2d;
  relu = new ReLU();
  conv2: Conv2d;
  bn2: BatchNorm2d;
  skip = new q.FloatFunctional();
  pool = new MaxPool2d(3, { stride: 2, padding: 1 });
  conv3: Conv2d;
  avgpool = new AdaptiveAvgPool2d(1);
  flatten = new Flatten();
  fc: Linear;
  dequant = new q.DeQuantStub();

  constructor(device: string) {
    super();
    this.conv1 = new Conv2d(3, 8, 3, { stride: 2, padding: 1, bias: false, device });
    this.bn1 = new BatchNorm2d(8, { device });
    this.conv2 = new Conv2d(8, 8, 3, { padding: 1, bias: false, device });
    this.bn2 = new BatchNorm2d(8, { device });
    this.conv3 = new Conv2d(8, 16, 1, { device });
    this.fc = new Linear(16, 5, { device });
  }

  override forward(x: kiln.Tensor): kiln.Tensor {
    x = this.quant.call(x);
    x = this.relu.call(this.bn1.call(this.conv1.call(x)));
    x = this.skip.addRelu(this.bn2.call(this.conv2.call(x)), x);
    x = this.conv3.call(this.pool.call(x) as kiln.Tensor);
    return this.dequant.call(this.fc.call(this.flatten.call(this.avgpool.call(x) as kiln.Tensor)));
  }
}

interface Case {
  name: string;
  /** The float model on `device`. */
  build: (device: string) => Module;
  /** Fusion before prepare. */
  fuse: (m: Module) => void;
  /** Input shape of one image. */
  image: [number, number, number];
  calibBatches: number;
  calibBatch: number;
  tests: number;
}

const CASES: Case[] = [
  {
    name: 'conv-bn-relu / add_relu / max and average pooling / linear net',
    build: (device) => new SmallNet(device),
    fuse: (m) => q.fuseModules(m, [['conv1', 'bn1', 'relu'], ['conv2', 'bn2']], { inplace: true }),
    image: [3, 16, 16],
    calibBatches: 3,
    calibBatch: 16,
    tests: 256,
  },
  {
    name: 'resnet18 (32x32, 5 classes)',
    build: (device) => quantizableResnet18({ numClasses: 5, device }),
    fuse: (m) => (m as ReturnType<typeof quantizableResnet18>).fuseModel(),
    image: [3, 32, 32],
    calibBatches: 3,
    calibBatch: 8,
    tests: 200,
  },
];

/** Seeded standard-normal images [n, ...image] on `device`, drawn on the CPU so both backends see the same values. */
function images(n: number, image: readonly number[], device: string): kiln.Tensor {
  const shape = [n, ...image];
  const host = kiln.randn(shape);
  const data = host.dataSync();
  host.dispose();
  return kiln.fromArray(data, shape, { device });
}

/** The exported model with every QuantizeLinear output also a graph output (uint8, its rank from Kiln's layer). */
function withQuantizedOutputs(bytes: Uint8Array, ranks: readonly number[]): { bytes: Uint8Array; names: string[] } {
  const model = readOnnx(bytes);
  const names = model.graph.nodes.filter((n) => n.opType === 'QuantizeLinear').map((n) => n.output[0]!);
  if (names.length !== ranks.length) throw new Error(`the export has ${names.length} QuantizeLinear outputs, Kiln's model ${ranks.length} quantized layers`);
  // Decoded attributes carry every field with its default; an encoder writes each one it is given, so keep the typed one.
  const field: Record<number, keyof AttributeProtoData> = { 1: 'f', 2: 'i', 3: 's', 4: 't', 6: 'floats', 7: 'ints' };
  for (const n of model.graph.nodes) {
    n.attribute = n.attribute.map((a) => ({ name: a.name, type: a.type, [field[a.type]!]: a[field[a.type]!] }) as AttributeProtoData);
  }
  const UINT8 = 2;
  names.forEach((name, i) => model.graph.outputs.push({ name, elemType: UINT8, dims: Array.from({ length: ranks[i]! }, (_, d) => `${name}_d${d}`) }));
  return { bytes: encodeModel(model), names };
}

for (const c of CASES) {
  describeEachBackend(`static int8 in onnxruntime: ${c.name}`, webgpu, (device) => {
    let model: Module;
    let x: kiln.Tensor;
    const layers: { op: string; shape: readonly number[]; ints: ArrayLike<number> }[] = [];
    let logits: Float32Array;
    let ortOut: Record<string, ArrayLike<number>>;
    let names: string[];

    beforeAll(async () => {
      // Seeded weights drawn on the CPU backend, the same on every backend.
      kiln.manualSeed(14);
      const float = c.build('cpu');
      randomizeBatchNorm(float);
      const sd: Record<string, kiln.Tensor> = {};
      for (const [k, t] of Object.entries(float.stateDict())) sd[k] = kiln.fromArray(t.dataSync(), t.shape, { dtype: t.dtype, device });
      float.dispose();
      model = skipInit(() => c.build(device));
      model.loadStateDict(sd);
      for (const t of Object.values(sd)) t.dispose();
      model.eval();
      c.fuse(model);
      q.prepare(model, { inplace: true });
      for (let i = 0; i < c.calibBatches; i++) {
        const b = images(c.calibBatch, c.image, device);
        kiln.tidy(() => { model.call(b); });
        b.dispose();
      }
      await q.convert(model, { inplace: true });

      const t0 = performance.now();
      x = images(c.tests, c.image, device);
      // Kiln's integers per layer, a slice of the inputs at a time, yielding to the event loop between
      // slices: the CPU backend runs synchronously, and a worker blocked for a minute loses vitest's RPC.
      const parts: { op: string; shape: number[]; ints: ArrayLike<number> }[][] = [];
      const logitParts: Float32Array[] = [];
      for (let start = 0; start < c.tests; start += SLICE) {
        const xs = x.slice(0, start, Math.min(c.tests, start + SLICE)).contiguous();
        const captured: { op: string; t: kiln.Tensor }[] = [];
        const out = kiln.noGrad(() => kiln.withTracer((o) => {
          if (QUANTIZED_OUTPUTS.has(o.op)) captured.push({ op: o.op, t: o.outputs[0] as kiln.Tensor });
        }, () => model.call(xs) as kiln.Tensor));
        const part = [];
        for (const { op, t } of captured) {
          const nchw = t.contiguous();
          part.push({ op, shape: [...t.shape], ints: await nchw.toArray() });
          nchw.dispose();
          t.dispose();
        }
        parts.push(part);
        logitParts.push((await out.toArray()) as Float32Array);
        out.dispose();
        xs.dispose();
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
      // Per layer, the slices joined along the batch (NCHW, batch first).
      for (let l = 0; l < parts[0]!.length; l++) {
        const joined = parts.flatMap((p) => Array.from(p[l]!.ints));
        layers.push({ op: parts[0]![l]!.op, shape: [c.tests, ...parts[0]![l]!.shape.slice(1)], ints: joined });
      }
      logits = Float32Array.from(logitParts.flatMap((p) => Array.from(p)));
      const t1 = performance.now();

      // Traced on two inputs, run on all of them (a dynamic batch axis).
      const example = x.slice(0, 0, 2).contiguous();
      const bytes = await exportOnnx(model, example, { opset: 17, dynamicAxes: { input: [0], output: [0] } });
      example.dispose();
      const t2 = performance.now();
      const debug = withQuantizedOutputs(bytes, layers.map((l) => l.shape.length));
      names = debug.names;
      ortOut = await runOrt(debug.bytes, { input: { data: (await x.toArray()) as Float32Array, dims: x.shape } });
      console.log(`[onnx ort-exact] ${device} ${c.name}: Kiln ${((t1 - t0) / 1000).toFixed(1)} s, export ${((t2 - t1) / 1000).toFixed(1)} s, onnxruntime ${((performance.now() - t2) / 1000).toFixed(1)} s`);
    }, 600_000);
    afterAll(() => {
      model?.dispose();
      x?.dispose();
    });

    it('every quantized activation of the exported graph equals Kiln\'s integers (0 steps)', () => {
      const report: string[] = [];
      for (const [i, layer] of layers.entries()) {
        const got = ortOut[names[i]!]!;
        expect(got.length, `${names[i]} (${layer.op}) element count`).toBe(layer.ints.length);
        let differ = 0;
        let max = 0;
        for (let k = 0; k < got.length; k++) {
          const d = Math.abs(got[k]! - layer.ints[k]!);
          if (d) differ++;
          max = Math.max(max, d);
        }
        if (differ) report.push(`${names[i]} (${layer.op}): ${differ}/${got.length} differ, max ${max} steps`);
      }
      console.log(`[onnx ort-exact] ${device} ${c.name}: ${layers.length} quantized layers x ${c.tests} inputs, ${report.length} differ`);
      expect(report, 'layers whose onnxruntime integers differ from Kiln\'s').toEqual([]);
    });

    it(`the logits are bit-equal and the predictions identical on all ${c.tests} inputs`, () => {
      const got = ortOut.output!;
      expect(got.length).toBe(logits.length);
      const classes = logits.length / c.tests;
      let differ = 0;
      let predictions = 0;
      for (let r = 0; r < c.tests; r++) {
        let a = 0;
        let b = 0;
        for (let k = 0; k < classes; k++) {
          if (got[r * classes + k] !== logits[r * classes + k]) differ++;
          if (got[r * classes + k]! > got[r * classes + a]!) a = k;
          if (logits[r * classes + k]! > logits[r * classes + b]!) b = k;
        }
        if (a !== b) predictions++;
      }
      expect({ logitsDiffer: differ, predictionsDiffer: predictions }).toEqual({ logitsDiffer: 0, predictionsDiffer: 0 });
    });
  });
}
