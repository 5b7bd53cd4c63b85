// Runs the `kiln` command line in-process with captured output, for the CLI tests.
import { runKiln } from '../src/cli/program.js';
import type { CliIO } from '../src/cli/io.js';

/** What one `kiln …` invocation returned and printed. */
export interface KilnRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `kiln <argv…>` through the same entry as the binary, collecting stdout and stderr. */
export async function kiln(...argv: string[]): Promise<KilnRun> {
  const out: string[] = [];
  const err: string[] = [];
  const sink = (buf: string[]) => ({ write: (s: string | Uint8Array) => (buf.push(String(s)), true) }) as unknown as NodeJS.WritableStream;
  const io: CliIO = { stdout: sink(out), stderr: sink(err) };
  const code = await runKiln(argv, io);
  return { code, stdout: out.join(''), stderr: err.join('') };
}
