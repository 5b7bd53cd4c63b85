// The rule every scope in Kiln follows (tidy, noGrad, enableGrad, and any
// later one such as autocast): a scope's body is synchronous.
//
// Scopes keep their state in module-level variables (a stack of tidy sets,
// the grad-mode flag). Across an `await` other tasks run while that state is
// still in place, so an async body would see their tensors disposed, or its
// own escape, and restore grad mode out of order when two bodies overlap.
// Browsers have no AsyncLocalStorage to make the state follow each task, so
// Kiln takes TF.js's rule for tidy: a body that returns a promise is
// rejected with an error that says what to do instead.
import { KilnError } from './errors.js';

/** @internal True for promises and other thenables. */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (typeof value === 'object' || typeof value === 'function') && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

/**
 * @internal The KilnError naming `scope` for a body that returned
 * `promise`; the caller closes the scope (restores its state) and throws it,
 * so the error leaves nothing behind. The abandoned promise gets a handler:
 * a later failure of its tail, which ran outside the scope, is reported by
 * this error rather than as an unhandled rejection.
 */
export function asyncBodyError(scope: string, promise: PromiseLike<unknown>, advice: string): KilnError {
  Promise.resolve(promise).catch(() => undefined);
  return new KilnError(scope, `the function returned a Promise, but a ${scope}() scope cannot span an await: ${advice}`);
}
