// Typed access to the "nn" record of tests/reference/gen_nn.py's output
// (see that file's docstring for the layout).
import { fromArray, type Tensor } from '@kiln/core';
import type { ReferenceFile, TensorRecord } from '../../../tests/helpers/reference.js';

export interface KeyedTensor {
  key: string;
  tensor: TensorRecord;
}

export interface TrainingRecord {
  optimizer: 'sgd' | 'adam' | 'adamw';
  losses: number[];
  lrs: number[][];
  lastLr: number[];
  final: KeyedTensor[];
  evalLogits: TensorRecord;
  layout: { state: Record<string, string[]>; param_groups: { keys: string[]; params: number[] }[] };
  momentumBuffers: TensorRecord[];
}

export interface NnReference {
  cnn: { str: string; keys: string[]; parameterNames: string[]; bufferNames: string[]; initial: KeyedTensor[]; data: { x: TensorRecord; y: TensorRecord }[] };
  training: TrainingRecord[];
  schedulers: { name: string; lrs: number[][]; initialLr: number[]; stateKeys: string[] }[];
  init: Record<string, any>;
  losses: { weight: TensorRecord; cases: { name: string; options: Record<string, unknown>; input: TensorRecord; target: TensorRecord; value: TensorRecord; grad: TensorRecord; str: string }[] };
  clip: { grads: TensorRecord[]; cases: { normType: number | 'inf'; maxNorm: number; total: number; clipped: TensorRecord[] }[] };
  errors: { message: string; missing: string[]; unexpected: string[]; nonStrict: { missing: string[]; unexpected: string[] } };
  prints: { sequential: string; moduleList: string; moduleDict: string; sequentialKeys: string[] };
}

/** The nn record of a loaded reference file. */
export function nnRecord(ref: ReferenceFile): NnReference {
  return (ref as unknown as { nn: NnReference }).nn;
}

/** A reference tensor uploaded to `device`. */
export function upload(ref: ReferenceFile, rec: TensorRecord, device: string): Tensor {
  return fromArray(ref.values(rec), rec.shape, { dtype: rec.dtype, device });
}

/** A reference state dict (list of keyed tensors) as Kiln tensors on `device`. */
export function uploadState(ref: ReferenceFile, entries: KeyedTensor[], device: string): Record<string, Tensor> {
  return Object.fromEntries(entries.map((e) => [e.key, upload(ref, e.tensor, device)]));
}
