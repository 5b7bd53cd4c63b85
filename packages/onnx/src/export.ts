// exportOnnx: trace a model once and write the graph it computed as ONNX.
import { KilnError, type Tensor } from '@kiln/core';
import type { Module } from '@kiln/nn';
import { recordGraph } from './record.js';
import { foldBatchNorms } from './fold-bn.js';
import { emitGraph } from './emit.js';
import { encodeModel } from './proto/codec.js';

/** The opsets the exporter writes. */
export const SUPPORTED_OPSETS: readonly number[] = [13, 14, 15, 16, 17];

/** Options of {@link exportOnnx}, as torch.onnx.export's keyword arguments. */
export interface ExportOnnxOptions {
  /** ONNX opset (default 17; 13..17). */
  opset?: number;
  /** Graph input names, one per example input (default `input`, `input_1`, ...). */
  inputNames?: readonly string[];
  /** Graph output names (default `output`, `output_1`, ...; an object output's keys). */
  outputNames?: readonly string[];
  /**
   * Dims whose size may vary, by input or output name: `{ input: { 0: 'batch' } }`
   * or as a list of dims `{ input: [0] }` (named `<name>_dynamic_axes_<k>`, as PyTorch).
   */
  dynamicAxes?: Record<string, Record<number, string> | readonly number[]>;
  /** Fold eval-mode BatchNorm into the preceding conv (default true, as torch's constant folding). */
  foldBatchNorm?: boolean;
  /** Free text stored as the graph's doc_string. */
  docString?: string;
}

function axesOf(name: string, spec: Record<number, string> | readonly number[] | undefined): Record<number, string> {
  if (!spec) return {};
  if (Array.isArray(spec)) return Object.fromEntries(spec.map((d, k) => [d, `${name}_dynamic_axes_${k + 1}`]));
  return spec as Record<number, string>;
}

const defaultNames = (base: string, n: number) => Array.from({ length: n }, (_, i) => (i === 0 ? base : `${base}_${i}`));

/**
 * Exports `model` as an ONNX model (the bytes of a .onnx file), as
 * `torch.onnx.export(model, exampleInputs, ...)`: the model runs once on
 * the example inputs in eval mode without autograd (its train/eval flags
 * are restored), and every op it runs is recorded through core's tracer.
 * Parameters and buffers become initializers named by their state-dict keys.
 * @throws KilnError naming the op and the module path when an op has no ONNX mapping.
 */
export async function exportOnnx(model: Module, exampleInputs: Tensor | readonly Tensor[], opts: ExportOnnxOptions = {}): Promise<Uint8Array> {
  const inputs = Array.isArray(exampleInputs) ? [...exampleInputs] : [exampleInputs as Tensor];
  const opset = opts.opset ?? 17;
  if (!SUPPORTED_OPSETS.includes(opset)) throw new KilnError('exportOnnx', `opset ${opset} is not supported; expected one of ${SUPPORTED_OPSETS.join(', ')}`);
  const inputNames = [...(opts.inputNames ?? defaultNames('input', inputs.length))];
  if (inputNames.length !== inputs.length) throw new KilnError('exportOnnx', `expected ${inputs.length} input names, got ${inputNames.length}`);
  const dyn = opts.dynamicAxes ?? {};
  const rec = recordGraph(model, inputs, { inputDyn: inputNames.map((n) => axesOf(n, dyn[n])) });
  const created: Tensor[] = [];
  try {
    let graph = rec.graph;
    if (opts.foldBatchNorm ?? true) {
      const folded = foldBatchNorms(graph);
      graph = folded.graph;
      created.push(...folded.created);
    }
    const count = graph.outputs.length;
    const keyed = rec.outputKeys.length > 1 && rec.outputKeys.some((k) => !/^\d+$/.test(k));
    const outputNames = [...(opts.outputNames ?? (keyed ? rec.outputKeys : defaultNames('output', count)))];
    if (outputNames.length !== count) throw new KilnError('exportOnnx', `the model has ${count} outputs but ${outputNames.length} output names were given`);
    for (const name of Object.keys(dyn)) {
      if (!inputNames.includes(name) && !outputNames.includes(name)) throw new KilnError('exportOnnx', `dynamicAxes names '${name}', which is neither an input nor an output (${[...inputNames, ...outputNames].join(', ')})`);
    }
    const proto = await emitGraph(graph, {
      opset,
      inputNames,
      outputNames,
      outputDyn: outputNames.map((n) => axesOf(n, dyn[n])),
      producerVersion: '0.1.0',
      docString: opts.docString,
    });
    return encodeModel(proto);
  } finally {
    rec.dispose();
    for (const t of created) t.dispose();
  }
}
