// Prints `N passed, N failed[, N skipped]` as the very last line of a run,
// the plain closing line CI reads. Listed after vitest's default reporter,
// whose output it leaves untouched; vitest itself sets the exit code.
import type { Reporter } from 'vitest/reporters';
import type { RunnerTask, RunnerTestFile } from 'vitest';

interface Counts {
  passed: number;
  failed: number;
  skipped: number;
}

function countTasks(task: RunnerTask, counts: Counts): void {
  if (task.type === 'suite') {
    for (const child of task.tasks) countTasks(child, counts);
    return;
  }
  const state = task.result?.state;
  if (task.mode === 'skip' || task.mode === 'todo' || state === 'skip' || state === 'todo') counts.skipped++;
  else if (state === 'pass') counts.passed++;
  else if (state === 'fail') counts.failed++;
}

export default class SummaryReporter implements Reporter {
  onFinished(files: RunnerTestFile[] = [], errors: unknown[] = []): void {
    const counts: Counts = { passed: 0, failed: 0, skipped: 0 };
    for (const file of files) {
      const before = counts.failed;
      countTasks(file, counts);
      // A file that failed to import or collect has no failing test in it;
      // count it once so the line never says `0 failed` on a failed run.
      if (file.result?.state === 'fail' && counts.failed === before) counts.failed++;
    }
    // Unhandled errors fail the run too; they count the same way.
    counts.failed += errors.length;
    const skipped = counts.skipped > 0 ? `, ${counts.skipped} skipped` : '';
    process.stdout.write(`${counts.passed} passed, ${counts.failed} failed${skipped}\n`);
  }
}
