/**
 * Command-line options of the benchmark suite, parsed with Node's util.parseArgs.
 */
import { parseArgs } from 'node:util';

/** The suites, in the order a run measures them: the headline targets first, so a time budget cuts the details. */
export const SUITES = ['gemm', 'resnet', 'train', 'profile', 'conv', 'layers', 'memory', 'browser', 'prune', 'quant'] as const;
export type Suite = (typeof SUITES)[number];

/** The peers measured beside Kiln. */
export const PEERS = ['tfjs', 'tfjs-wasm', 'ort', 'torch'] as const;
export type Peer = (typeof PEERS)[number];

export interface Options {
  /** The CI subset: small shapes, few runs, well under two minutes. */
  quick: boolean;
  suites: Suite[];
  peers: Peer[];
  /** Also append every JSON line to this file. */
  out: string | null;
  /** Write the results markdown (machine, targets, table) to this file. */
  results: string | null;
  /** Skip the readable table at the end (JSON lines only). */
  table: boolean;
  /** Cases not started by then are reported as skipped. */
  maxSeconds: number;
  /** Autotune Kiln's convs (cache: KILN_TUNE_CACHE, else benchmarks/.cache/kiln-tune.json); --no-tune: the fixed table. */
  tune: boolean;
  /** KILN_KERNEL_STRATEGY for Kiln's backend: 'gpu', 'cpu-like' or 'auto' (--strategy). */
  strategy: 'gpu' | 'cpu-like' | 'auto';
  /** The byte budget the memory suite finds the largest batch for (--memory-budget, default 2GiB). */
  memoryBudget: number;
}

/** Default time budgets: the CI subset must stay under two minutes, a full run under ten. */
const DEFAULT_MAX_SECONDS = { quick: 100, full: 540 };

const USAGE = `usage: node benchmarks/dist/run.js [options]

  --quick           CI subset: small shapes, few runs (< 2 min on 2 cores)
  --only LIST       suites to run, comma-separated: ${SUITES.join(', ')}
  --peers LIST      peers to measure beside Kiln: ${PEERS.join(', ')}, or none
  --out FILE        also append the JSON lines to FILE
  --results FILE    write the results markdown (e.g. benchmarks/RESULTS.md)
  --no-table        print JSON lines only
  --no-tune         Kiln's convs take the fixed tuning table (default: autotuned,
                    cache KILN_TUNE_CACHE or benchmarks/.cache/kiln-tune.json)
  --strategy S      Kiln's kernel strategy class: gpu, cpu-like or auto (default auto)
  --max-seconds N   start no case after N seconds (default ${DEFAULT_MAX_SECONDS.quick} with --quick, else ${DEFAULT_MAX_SECONDS.full});
                    cases left out are printed as skipped
  --memory-budget B the byte budget (e.g. 2GiB, 512MB) the memory suite finds the
                    largest training batch for (default 2GiB)
  --help            this text

Prints one JSON line per measurement on stdout, then a table. Progress goes to stderr.`;

function list<T extends string>(flag: string, value: string | undefined, allowed: readonly T[], all: readonly T[]): T[] {
  if (value === undefined) return [...all];
  if (value === 'none' || value === '') return [];
  const items = value.split(',').map((s) => s.trim()).filter(Boolean);
  for (const item of items) {
    if (!(allowed as readonly string[]).includes(item)) throw new Error(`--${flag}: unknown '${item}' (expected one of ${allowed.join(', ')})`);
  }
  return all.filter((a) => items.includes(a));
}

/** Parses '2GiB', '512MiB', '1.5GB', '1000000' into bytes. */
export function parseBytes(text: string): number {
  const m = /^\s*([\d.]+)\s*(B|KB|MB|GB|KiB|MiB|GiB)?\s*$/i.exec(text);
  if (!m) throw new Error(`--memory-budget: expected a size such as 2GiB or 512MB, got '${text}'`);
  const unit = (m[2] ?? 'B').toLowerCase();
  const mult: Record<string, number> = { b: 1, kb: 1e3, mb: 1e6, gb: 1e9, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30 };
  return Math.floor(Number(m[1]) * mult[unit]!);
}

function strategyOption(v: string | undefined): Options['strategy'] {
  if (v === undefined) return 'auto';
  if (v === 'gpu' || v === 'cpu-like' || v === 'auto') return v;
  throw new Error(`--strategy: expected gpu, cpu-like or auto, got '${v}'`);
}

/** Parses argv (without node and the script); prints usage and exits on --help or an error. */
export function parseOptions(argv: string[]): Options {
  try {
    const { values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        quick: { type: 'boolean', default: false },
        only: { type: 'string' },
        peers: { type: 'string' },
        out: { type: 'string' },
        results: { type: 'string' },
        'no-table': { type: 'boolean', default: false },
        'no-tune': { type: 'boolean', default: false },
        strategy: { type: 'string' },
        'max-seconds': { type: 'string' },
        'memory-budget': { type: 'string' },
        help: { type: 'boolean', default: false },
      },
    });
    if (values.help) {
      console.log(USAGE);
      process.exit(0);
    }
    const quick = values.quick ?? false;
    const maxSeconds = values['max-seconds'] === undefined ? DEFAULT_MAX_SECONDS[quick ? 'quick' : 'full'] : Number(values['max-seconds']);
    if (!(maxSeconds > 0)) throw new Error(`--max-seconds: expected a positive number, got '${values['max-seconds']}'`);
    return {
      quick,
      maxSeconds,
      suites: list('only', values.only, SUITES, SUITES),
      peers: list('peers', values.peers, PEERS, PEERS),
      out: values.out ?? null,
      results: values.results ?? null,
      table: !values['no-table'],
      tune: !values['no-tune'],
      strategy: strategyOption(values.strategy),
      memoryBudget: parseBytes(values['memory-budget'] ?? '2GiB'),
    };
  } catch (e) {
    console.error(`${(e as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
}
