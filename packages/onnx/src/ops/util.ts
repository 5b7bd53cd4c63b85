import type { GraphNode, Value } from '../graph.js';

/** Input `i` of `n` as a value (throws when it is not a tensor). */
export function tensorInput(n: GraphNode, i: number): Value {
  const v = n.inputs[i];
  if (!v || typeof v !== 'object') throw new Error(`internal: input ${i} of ${n.op} is not a tensor`);
  return v;
}

/** The first tensor among the inputs (what a scalar operand takes its dtype from). */
export function firstTensor(n: GraphNode): Value | undefined {
  return n.inputs.find((v): v is Value => !!v && typeof v === 'object');
}
