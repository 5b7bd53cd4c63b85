import { KilnError } from '@kiln/core';
import { createHash } from 'node:crypto';
import type { FashionMnist } from './data/fashion-mnist.js';
import { pct } from './train-loop.js';

/**
 * The models a run caches like torch hub's cache (the pretrained backbone,
 * the from-scratch baseline): a 16-hex key of everything that changes what
 * training produces, and the check a cached model passes before a run
 * reuses it.
 */
export function cacheKey(settings: Record<string, unknown>): string {
  return createHash('sha256').update(JSON.stringify(settings)).digest('hex').slice(0, 16);
}

/** The data part of a cache key: the embedded subset, or a directory and its training-set size. */
export const dataKey = (data: FashionMnist) => (data.kind === 'embedded' ? 'embedded' : `${data.dir}:${data.train.count}`);

/**
 * Throws unless a cached model, re-measured now, scores what its record says
 * (to one image: another backend may round one near-tie the other way; more
 * means a different model).
 */
export function checkRemeasured(stage: string, what: string, file: string, split: string, measured: { top1: number; count: number }, recorded: number): void {
  if (Math.abs(Math.round((measured.top1 - recorded) * measured.count)) > 1) {
    throw new KilnError(stage, `the cached ${what} ${file} scores ${pct(measured.top1)} on the ${split} test set, its record says ${pct(recorded)}: delete it or pass --retrain`);
  }
}
