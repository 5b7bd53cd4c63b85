/** How many bytes a model's state dict takes, float vs quantized. */
import { itemSize, type Tensor } from '@kiln/core';
import type { Module } from '../module.js';

/** One row of a size report. */
export interface SizeRow {
  /** Module path ('' for the whole model). */
  module: string;
  /** State-dict bytes of the float model (or module). */
  floatBytes: number;
  /** State-dict bytes of the quantized one. */
  quantizedBytes: number;
  /** floatBytes / quantizedBytes. */
  ratio: number;
}

/** Bytes of tensor data in `m`'s state dict (what a safetensors file holds, less its header). */
export function stateDictBytes(m: Module): number {
  const sd = m.stateDict({ keepVars: true });
  return Object.values(sd).reduce((n, t: Tensor) => n + t.numel() * itemSize(t.dtype), 0);
}

/**
 * Per-module and total state-dict bytes of a float model and its quantized
 * copy: one row per top-level child whose size changed, then the total.
 */
export function sizeReport(floatModel: Module, quantizedModel: Module): SizeRow[] {
  const rows: SizeRow[] = [];
  const row = (module: string, f: number, q: number): SizeRow => ({ module, floatBytes: f, quantizedBytes: q, ratio: q > 0 ? f / q : Infinity });
  const quantChildren = new Map(quantizedModel.namedChildren());
  for (const [name, child] of floatModel.namedChildren()) {
    const q = quantChildren.get(name);
    if (!q) continue;
    const f = stateDictBytes(child);
    const b = stateDictBytes(q);
    if (f !== b) rows.push(row(name, f, b));
  }
  rows.push(row('', stateDictBytes(floatModel), stateDictBytes(quantizedModel)));
  return rows;
}

/** The size report as an aligned text table (bytes and the shrink factor). */
export function formatSizeReport(rows: SizeRow[]): string {
  const lines = ['module'.padEnd(20) + 'float32 bytes'.padStart(16) + 'int8 bytes'.padStart(14) + 'ratio'.padStart(9)];
  for (const r of rows) {
    lines.push((r.module || '(total)').padEnd(20) + String(r.floatBytes).padStart(16) + String(r.quantizedBytes).padStart(14) + `${r.ratio.toFixed(2)}x`.padStart(9));
  }
  return lines.join('\n');
}
