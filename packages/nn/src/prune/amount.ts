// How much to prune, with PyTorch's rules (torch.nn.utils.prune's
// _validate_pruning_amount_init, _compute_nparams_toprune and
// _validate_pruning_amount): an integer is a count, a non-integer a fraction
// in [0, 1] of the prunable entries, rounded half to even as Python's round().
import { KilnError } from '@kiln/core';

/**
 * A fraction of the prunable entries, for the amounts JavaScript cannot tell
 * from integers: `fraction(1)` prunes everything, where the number `1` is a
 * count of one entry (Python's `1.0` versus `1`).
 */
export interface PruneFraction {
  /** The fraction in [0, 1]. */
  readonly fraction: number;
}

/** How much to prune: an integer count, a non-integer fraction in (0, 1), or {@link fraction}(x). */
export type PruneAmount = number | PruneFraction;

/** `x` as a fraction of the prunable entries, even when it is 0 or 1 (Python's `0.0` / `1.0`). */
export function fraction(x: number): PruneFraction {
  return { fraction: x };
}

const isFraction = (a: PruneAmount): a is PruneFraction => typeof a === 'object' && a !== null && 'fraction' in a;

/** The amount as PyTorch prints it: `0.2`, `3`, `1.0` for fraction(1). */
export function amountText(a: PruneAmount): string {
  if (isFraction(a)) return Number.isInteger(a.fraction) ? a.fraction.toFixed(1) : String(a.fraction);
  return String(a);
}

/**
 * Throws unless `amount` is a non-negative integer or a fraction in [0, 1]
 * (PyTorch's check when a pruning method is built). `size`, when known, is
 * named in the message.
 */
export function validateAmount(method: string, amount: PruneAmount, size?: number): void {
  const of = size === undefined ? '' : ` (pruning a tensor of ${size} prunable entries)`;
  if (isFraction(amount)) {
    if (typeof amount.fraction !== 'number' || !(amount.fraction >= 0 && amount.fraction <= 1)) {
      throw new KilnError(method, `amount=${amountText(amount)} should either be a float in the range [0, 1] or a non-negative integer${of}`);
    }
    return;
  }
  if (typeof amount !== 'number' || Number.isNaN(amount)) throw new KilnError(method, `Invalid type for amount: ${String(amount)}. Must be int or float.`);
  if (Number.isInteger(amount) ? amount < 0 : !(amount >= 0 && amount <= 1)) {
    throw new KilnError(method, `amount=${amount} should either be a float in the range [0, 1] or a non-negative integer${of}`);
  }
}

/** Python's round(): half to even. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x - Math.trunc(x)) === 0.5 ? 2 * Math.round(x / 2) : r;
}

/**
 * How many of `size` prunable entries (or channels) `amount` prunes; throws
 * when a count exceeds `size`, naming the method, the amount and the size.
 */
export function countToPrune(method: string, amount: PruneAmount, size: number): number {
  validateAmount(method, amount, size);
  if (isFraction(amount)) return roundHalfEven(amount.fraction * size);
  if (Number.isInteger(amount)) {
    if (amount > size) throw new KilnError(method, `amount=${amount} should be smaller than the number of parameters to prune=${size}`);
    return amount;
  }
  return roundHalfEven(amount * size);
}
