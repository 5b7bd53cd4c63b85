/**
 * Output: one JSON line per measurement on stdout (the machine-readable
 * record, each carrying the adapter and versions), a readable table at the
 * end, progress on stderr.
 */
import { appendFileSync } from 'node:fs';
import os from 'node:os';
import type { Timing } from './timing.js';

/** What every line carries: where and with what it ran. */
export interface Context {
  adapter: Record<string, unknown> | null;
  versions: Record<string, string>;
  quick: boolean;
}

/** A peer's time (and anything else it reports) for one case. */
export interface PeerResult {
  ms?: number;
  runs?: number;
  gflops?: number;
  error?: string;
  [key: string]: unknown;
}

/** One measurement: Kiln's time for a case plus the peers' times. */
export interface Measurement {
  suite: string;
  case: string;
  /** Kiln's median ms (absent when Kiln could not run it). */
  ms?: number;
  runs?: number;
  minMs?: number;
  /** Floating-point operations of one run, for GFLOP/s. */
  flop?: number;
  peers?: Partial<Record<string, PeerResult>>;
  error?: string;
  [key: string]: unknown;
}

export const log = (msg: string): void => {
  process.stderr.write(`[bench] ${msg}\n`);
};

const round = (x: number, digits = 3): number => Number(x.toPrecision(digits + 2));

export const gflops = (flop: number, ms: number): number => round(flop / ms / 1e6, 3);

export function timingFields(t: Timing): { ms: number; minMs: number; runs: number } {
  return { ms: round(t.ms), minMs: round(t.minMs), runs: t.runs };
}

export class Reporter {
  /** Every line emitted so far. */
  readonly rows: Record<string, unknown>[] = [];

  constructor(private readonly ctx: Context, private readonly outFile: string | null) {}

  /** Completes a measurement (GFLOP/s, vs_<peer> = peer ms / Kiln ms) and prints its JSON line. */
  emit(m: Measurement): Record<string, unknown> {
    const line: Record<string, unknown> = { suite: m.suite, case: m.case };
    const { suite: _s, case: _c, peers, flop, ...rest } = m;
    Object.assign(line, rest);
    if (flop && m.ms) line.gflops = gflops(flop, m.ms);
    if (peers) {
      const out: Record<string, PeerResult> = {};
      for (const [name, p] of Object.entries(peers)) {
        if (!p) continue;
        out[name] = flop && p.ms ? { ...p, gflops: gflops(flop, p.ms) } : p;
        if (p.ms && m.ms) line[`vs_${name}`] = round(p.ms / m.ms, 3);
      }
      line.peers = out;
    }
    line.quick = this.ctx.quick;
    // The machine is shared: the 1-minute load average says how quiet it was.
    line.load1 = Number(os.loadavg()[0]!.toFixed(2));
    line.adapter = this.ctx.adapter;
    line.versions = this.ctx.versions;
    const text = JSON.stringify(line);
    process.stdout.write(`${text}\n`);
    if (this.outFile) appendFileSync(this.outFile, `${text}\n`);
    this.rows.push(line);
    return line;
  }

  /** The readable summary of everything emitted. */
  table(): string {
    const peerNames = [...new Set(this.rows.flatMap((r) => Object.keys((r.peers as object | undefined) ?? {})))];
    const header = ['suite', 'case', 'kiln ms', 'GFLOP/s', ...peerNames.flatMap((p) => [`${p} ms`, `vs_${p}`]), 'notes'];
    const fmt = (v: unknown): string => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : Math.abs(v) >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(2) : v.toPrecision(3)) : v === undefined ? '' : String(v));
    const body = this.rows.map((r) => {
      const peers = (r.peers ?? {}) as Record<string, PeerResult>;
      const notes = Object.entries(r)
        .filter(([k]) => NOTE_KEYS.includes(k))
        .map(([k, v]) => `${k}=${typeof v === 'number' ? fmt(v) : JSON.stringify(v)}`);
      if (r.error) notes.push(`error: ${String(r.error).slice(0, 80)}`);
      if (r.skipped) notes.push(`skipped (${String(r.skipped)})`);
      for (const [p, res] of Object.entries(peers)) if (res.error) notes.push(`${p} error: ${res.error.slice(0, 60)}`);
      return [
        String(r.suite), String(r.case), fmt(r.ms), fmt(r.gflops),
        ...peerNames.flatMap((p) => [fmt(peers[p]?.ms), fmt(r[`vs_${p}`])]),
        notes.join('; '),
      ];
    });
    const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
    const line = (cells: string[]) => `| ${cells.map((c, i) => (i < 2 || i === cells.length - 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
    return [line(header), `|${widths.map((w, i) => (i < 2 || i === widths.length - 1 ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`, ...body.map(line)].join('\n');
  }
}

/** Extra fields worth showing in the table's notes column. */
const NOTE_KEYS = ['gpuError', 'maxAbsDiff', 'buffersAllocatedAfterFirst', 'buffersAllocated', 'loss', 'lossDiff', 'gpuMs', 'share', 'count'];
