/**
 * Peer: PyTorch on the CPU through /usr/bin/python3, as a long-lived
 * process (tests/reference/bench_torch.py serve) so its cases interleave
 * with Kiln's on the same machine state: one JSON case per line in, one
 * JSON result per line out.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { RunPolicy } from '../timing.js';
import type { PeerResult } from '../report.js';
import { CACHE_DIR, TORCH_PEER_SCRIPT } from '../weights.js';

export interface TorchHello {
  torch: string;
  torchvision: string;
  threads: number;
  blas: string;
}

export class TorchPeer {
  private nextId = 0;
  private readonly waiting = new Map<number, (r: PeerResult) => void>();

  private constructor(private readonly proc: ChildProcessWithoutNullStreams, readonly hello: TorchHello, lines: AsyncIterableIterator<string>) {
    void (async () => {
      for await (const line of lines) {
        const r = JSON.parse(line) as PeerResult & { id: number };
        this.waiting.get(r.id)?.(r);
        this.waiting.delete(r.id);
      }
      for (const resolve of this.waiting.values()) resolve({ error: 'the PyTorch process exited' });
      this.waiting.clear();
    })();
  }

  /** Starts the PyTorch process; rejects when python or torch is missing. */
  static async create(python: string): Promise<TorchPeer> {
    if (!existsSync(python)) throw new Error(`${python} not found`);
    const proc = spawn(python, [TORCH_PEER_SCRIPT, 'serve', CACHE_DIR], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    proc.stderr.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-2000);
    });
    const lines = createInterface({ input: proc.stdout })[Symbol.asyncIterator]();
    const first = await Promise.race([
      lines.next(),
      new Promise<never>((_, reject) => proc.once('exit', (code) => reject(new Error(`PyTorch peer exited (${code}): ${stderr.trim().split('\n').slice(-1)[0] ?? ''}`)))),
    ]);
    if (first.done) throw new Error(`PyTorch peer said nothing: ${stderr.trim()}`);
    const hello = JSON.parse(first.value) as TorchHello & { ready: boolean };
    return new TorchPeer(proc, hello, lines);
  }

  /** Times one case in PyTorch (median ms after warm-up under the same run policy as Kiln). */
  time(kase: Record<string, unknown>, policy: RunPolicy): Promise<PeerResult> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, (r) => {
        const { id: _id, ...rest } = r as PeerResult & { id?: number };
        resolve(rest);
      });
      this.proc.stdin.write(`${JSON.stringify({ ...kase, id, warmup: policy.warmup, minRuns: policy.minRuns, maxRuns: policy.maxRuns, budgetMs: policy.budgetMs, capMs: policy.capMs })}\n`);
    });
  }

  close(): void {
    this.proc.stdin.end();
  }
}
