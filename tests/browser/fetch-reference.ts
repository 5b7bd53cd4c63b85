// tests/helpers/reference.ts for a page: the same files (served under
// /ref/ by the browser tests' server), read with fetch instead of node:fs.
import type { RefCase, TensorRecord } from '../helpers/reference.js';

/** A reference file in the page: its cases and a decoder for its tensors. */
export interface PageReference {
  torch: string;
  cases: RefCase[];
  values(rec: TensorRecord): Float32Array | Int32Array | Int8Array | Uint8Array;
}

const ARRAYS = { float32: Float32Array, int32: Int32Array, int8: Int8Array, uint8: Uint8Array, bool: Uint8Array };

async function fetchBytes(url: string): Promise<Uint8Array> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`GET ${url}: ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

/** Fetches `/ref/<name>/<name>.json` and every .bin it names. */
export async function fetchReference(name: string): Promise<PageReference> {
  const doc = JSON.parse(new TextDecoder().decode(await fetchBytes(`/ref/${name}/${name}.json`))) as { torch: string; cases: RefCase[] };
  const files = new Set<string>();
  const visit = (rec: TensorRecord | null | undefined) => rec?.bin && files.add(rec.bin.file);
  for (const c of doc.cases) [...c.inputs, ...c.outputs, ...c.gradOutputs, ...c.grads].forEach(visit);
  const bins = new Map<string, Uint8Array>();
  for (const f of files) bins.set(f, await fetchBytes(`/ref/${name}/${f}`));
  const values = (rec: TensorRecord) => {
    const Ctor = ARRAYS[rec.dtype];
    if (rec.bin) {
      const bytes = bins.get(rec.bin.file)!.slice(rec.bin.offset, rec.bin.offset + rec.bin.length * Ctor.BYTES_PER_ELEMENT);
      return new Ctor(bytes.buffer, 0, rec.bin.length);
    }
    const data = rec.data ?? [];
    const out = new Ctor(data.length);
    for (let i = 0; i < data.length; i++) out[i] = Number(data[i]); // 'NaN', 'Infinity' and '-Infinity' included
    return out;
  };
  return { torch: doc.torch, cases: doc.cases, values };
}

/** A gen_resnet.py case's tensor by name (its args.outputNames), as in packages/resnet/test/model.helpers.ts. */
export function namedTensor(ref: PageReference, caseName: string, tensor: string): { values: Float32Array | Int32Array; shape: number[] } {
  const c = ref.cases.find((k) => k.name === caseName);
  if (!c) throw new Error(`reference has no case '${caseName}'`);
  const i = ((c.args.outputNames as string[]) ?? []).indexOf(tensor);
  if (i < 0) throw new Error(`reference case ${caseName} has no tensor '${tensor}'`);
  return { values: ref.values(c.outputs[i]!) as Float32Array | Int32Array, shape: c.outputs[i]!.shape };
}
