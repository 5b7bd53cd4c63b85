import { SingleBar } from 'cli-progress';

/** A progress bar for one long step, or nothing when output is not a terminal. */
export interface Progress {
  /** Moves the bar to `value`, with optional extra fields shown after it (e.g. the loss). */
  update(value: number, fields?: Record<string, string>): void;
  stop(): void;
}

/** Where the demo writes: lines to stdout, bars to stderr when it is a terminal. */
export interface DemoIO {
  log(line: string): void;
  /** A bar counting to `total` (cli-progress on a terminal, silent elsewhere: logs carry the numbers). */
  bar(label: string, total: number, unit: string): Progress;
}

/** The terminal IO: cli-progress bars on stderr when it is a TTY and `bars` is true. */
export function consoleIO(bars = true): DemoIO {
  const tty = bars && process.stderr.isTTY === true;
  return {
    log: (line) => console.log(line),
    bar(label, total, unit) {
      if (!tty) return { update() {}, stop() {} };
      const bar = new SingleBar({
        format: `${label.padEnd(24)} [{bar}] {value}/{total} ${unit} | {duration_formatted} (eta {eta_formatted}) {info}`,
        stream: process.stderr,
        hideCursor: true,
        clearOnComplete: true,
        etaBuffer: 20,
      });
      bar.start(total, 0, { info: '' });
      return {
        update: (value, fields) => bar.update(value, { info: fields ? Object.entries(fields).map(([k, v]) => `${k} ${v}`).join(' ') : '' }),
        stop: () => bar.stop(),
      };
    },
  };
}

/** IO that keeps the lines (tests) and shows no bars. */
export function memoryIO(lines: string[] = []): DemoIO & { lines: string[] } {
  return { lines, log: (line) => lines.push(line), bar: () => ({ update() {}, stop() {} }) };
}
