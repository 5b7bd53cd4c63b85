// Runs a model once under core's tracer and records the graph it computed:
// example inputs become graph inputs, parameters and buffers become values
// named by their state-dict keys, tensors made inside forward become
// constants, an op whose inputs are all constant is folded to its result, and
// module forward hooks record the scope every op ran in.
import { KilnError, keep, noGrad, tidy, untraced, withTracer, type Tensor, type TracedOp } from '@kiln/core';
import type { Module } from '@kiln/nn';
import { modulePath, type GraphNode, type RecordedGraph, type Scope, type Value } from './graph.js';
import { propagateDyn } from './dynamic.js';
import { EMITTERS } from './ops/index.js';

/** What {@link recordGraph} needs besides the model and its inputs. */
export interface RecordOptions {
  /** Per input, dim index to dim_param name (the dynamic axes). */
  inputDyn: Record<number, string>[];
}

/** A recorded graph and the tensors it keeps (constants), released by `dispose`. */
export interface Recording {
  graph: RecordedGraph;
  /** The model's outputs flattened (objects by key), as the graph's outputs. */
  outputKeys: string[];
  dispose(): void;
}

const isTensor = (x: unknown): x is Tensor => (x as Tensor | null)?._isKilnTensor === true;

function layoutKey(t: Tensor): string {
  return `${t.dataPtr()}|${t.offset}|${t.shape.join(',')}|${t.strides.join(',')}`;
}

/** The model's outputs as a flat list with keys: a tensor, an array of tensors, or an object of tensors. */
function flattenOutputs(out: unknown): { keys: string[]; tensors: Tensor[] } {
  if (isTensor(out)) return { keys: [''], tensors: [out] };
  const entries: [string, unknown][] = Array.isArray(out) ? out.map((v, i) => [String(i), v]) : out && typeof out === 'object' ? Object.entries(out) : [];
  const pairs = entries.filter((e): e is [string, Tensor] => isTensor(e[1]));
  if (!pairs.length) throw new KilnError('exportOnnx', `the model's forward must return a tensor, an array or an object of tensors, got ${out === null ? 'null' : typeof out}`);
  return { keys: pairs.map(([k]) => k), tensors: pairs.map(([, t]) => t) };
}

/** PyTorch's scope segment: a child's attribute name, or `parent.index` for a container's numbered child. */
function segmentOf(path: string): string {
  const parts = path.split('.');
  const last = parts[parts.length - 1]!;
  return /^\d+$/.test(last) && parts.length > 1 ? `${parts[parts.length - 2]}.${last}` : last;
}

/**
 * Runs `model.call(...inputs)` once in eval mode without autograd and records
 * every op that ran. The model's train/eval flags are restored afterwards.
 */
export function recordGraph(model: Module, inputs: readonly Tensor[], opts: RecordOptions): Recording {
  let nextId = 0;
  const kept: Tensor[] = [];
  const known = new Map<Tensor, { value: Value; version: number }>();
  const byLayout = new Map<string, Value>();
  const liveStorages = new Set<number>();
  const nodes: GraphNode[] = [];
  const scopes: Scope[] = [];

  const register = (t: Tensor, value: Value) => {
    known.set(t, { value, version: t.version });
    byLayout.set(layoutKey(t), value);
    if (value.kind === 'node' || value.kind === 'input') liveStorages.add(t.dataPtr());
  };
  const newValue = (t: Tensor, kind: Value['kind'], extra: Partial<Value> = {}): Value => ({
    id: nextId++,
    kind,
    shape: [...t.shape],
    dtype: t.dtype,
    dyn: t.shape.map(() => null),
    ...extra,
  });
  const snapshot = (t: Tensor): Tensor => {
    const c = keep(untraced(() => noGrad(() => t.clone())));
    kept.push(c);
    return c;
  };
  const where = () => (scopes.length ? `module '${scopes[scopes.length - 1]!.path}'` : 'the root module');

  const lookup = (t: Tensor, op: string): Value => {
    const e = known.get(t);
    if (e) {
      if (t.version !== e.version) {
        throw new KilnError('exportOnnx', `${op} in ${where()} reads a tensor of shape [${t.shape.join(', ')}] that was modified in place by an op the tracer could not follow (an in-place op on a view of it, or on it through a view)`);
      }
      return e.value;
    }
    // A new tensor object over a traced value (alias(), detach()) is that value.
    const alias = byLayout.get(layoutKey(t));
    if (alias && alias.kind !== 'const') {
      register(t, alias);
      return alias;
    }
    if (liveStorages.has(t.dataPtr())) {
      throw new KilnError('exportOnnx', `${op} in ${where()} reads a view of a traced value that was made without a traced op`);
    }
    // Never seen and not a view of anything traced: a constant made inside forward.
    const value = newValue(t, 'const', { data: snapshot(t) });
    register(t, value);
    return value;
  };

  for (const [name, t] of [...model.namedParameters(), ...model.namedBuffers()]) {
    if (!known.has(t)) register(t, newValue(t, 'param', { name, data: t }));
  }
  const inputValues = inputs.map((t, i) => {
    if (!isTensor(t)) throw new KilnError('exportOnnx', `example input ${i} must be a Tensor`);
    const v = newValue(t, 'input');
    v.dyn = t.shape.map((_, d) => opts.inputDyn[i]?.[d] ?? null);
    register(t, v);
    return v;
  });

  const onOp = (o: TracedOp) => {
    const outs = o.outputs.filter(isTensor);
    // A wrapper reported after the ops inside it (a custom Function): those ops are the graph.
    // A core op writing into a tensor it made itself is a new value, never a wrapper.
    if (outs.length && outs.every((t) => known.has(t)) && !(o.op in EMITTERS)) return;
    const ins = o.inputs.map((x) => (isTensor(x) ? lookup(x, o.op) : typeof x === 'number' ? x : null));
    const constant = ins.every((v) => v === null || typeof v === 'number' || v.kind === 'param' || v.kind === 'const');
    if (constant) {
      for (const t of outs) register(t, newValue(t, 'const', { data: snapshot(t) }));
      return;
    }
    const node: GraphNode = { op: o.op, inputs: ins, attrs: o.attrs, outputs: [], scopes: [...scopes] };
    node.outputs = outs.map((t) => newValue(t, 'node', { producer: node }));
    node.outputs.forEach((v, i) => {
      v.dyn = propagateDyn(node, i);
      register(outs[i]!, v);
    });
    nodes.push(node);
  };
  const onAssign = (target: Tensor, source: Tensor) => {
    const e = known.get(source);
    if (!e) return;
    register(target, e.value);
  };

  const paths = new Map<Module, string>(model.namedModules().filter(([p]) => p !== '').map(([p, m]) => [m, p] as const));
  // A module called again gets `name_1`, `name_2` (PyTorch's scope names: `/layer1/layer1.0/relu_1/Relu`).
  const calls = new Map<Module, number>();
  const handles = [...paths].flatMap(([m, path]) => [
    m.registerForwardPreHook(() => {
      const k = calls.get(m) ?? 0;
      calls.set(m, k + 1);
      scopes.push({ path, segment: k === 0 ? segmentOf(path) : `${segmentOf(path)}_${k}`, type: m.constructor.name });
      return undefined;
    }),
    m.registerForwardHook(() => {
      scopes.pop();
      return undefined;
    }),
  ]);
  const modes = model.modules().map((m) => [m, m.training] as const);
  model.eval();
  let graph: RecordedGraph;
  let outputKeys: string[] = [];
  try {
    graph = tidy(() =>
      noGrad(() =>
        withTracer({ op: onOp, assign: onAssign }, () => {
          const { keys, tensors } = flattenOutputs(model.call(...inputs));
          outputKeys = keys;
          return { nodes, inputs: inputValues, outputs: tensors.map((t) => lookup(t, 'output')) };
        }),
      ),
    );
  } catch (err) {
    for (const t of kept) t.dispose();
    throw err;
  } finally {
    for (const h of handles) h.remove();
    for (const [m, training] of modes) m.training = training;
  }
  nameModuleConstants(model, known);
  return { graph: prune(graph), outputKeys, dispose: () => kept.forEach((t) => t.dispose()) };
}

/** A folded constant that a module holds as an attribute (pruning's effective `weight`) takes that name. */
function nameModuleConstants(model: Module, known: Map<Tensor, { value: Value }>): void {
  for (const [path, m] of model.namedModules()) {
    for (const attr of ['weight', 'bias']) {
      let t: unknown;
      try {
        t = (m as unknown as Record<string, unknown>)[attr];
      } catch {
        continue;
      }
      const v = isTensor(t) ? known.get(t)?.value : undefined;
      if (v && v.kind === 'const' && !v.name) v.name = path ? `${path}.${attr}` : attr;
    }
  }
}

/** Drops the nodes no output depends on (maxPool's indices, unused branches). */
function prune(g: RecordedGraph): RecordedGraph {
  const live = new Set<GraphNode>();
  const stack = g.outputs.map((v) => v.producer).filter((n): n is GraphNode => !!n);
  while (stack.length) {
    const n = stack.pop()!;
    if (live.has(n)) continue;
    live.add(n);
    for (const v of n.inputs) if (v && typeof v === 'object' && v.producer) stack.push(v.producer);
  }
  return { ...g, nodes: g.nodes.filter((n) => live.has(n)) };
}

export { modulePath };
