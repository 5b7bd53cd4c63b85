/** Where the command line writes: process.stdout/stderr, or a test's buffers. */
export interface CliIO {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

/** An error the CLI reports as one line and exit status 1, without a stack. */
export class CliError extends Error {
  override name = 'CliError';
}

/** The one-line message for an error: its first line, with PyTorch-style multi-line state-dict errors joined. */
export function oneLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.replace(/\s*\n\s*/g, ' ').trim();
}
