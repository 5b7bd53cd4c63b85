/**
 * The error every Kiln op throws on bad input: it names the op, what was
 * expected and what came, so a user can fix the call without a debugger.
 */
export class KilnError extends Error {
  /** The class name, as stack traces and logs show it. */
  override name = 'KilnError';
  /** `op` leads the message: `${op}: ${message}`. */
  constructor(
    /** The op or function that rejected its input, e.g. `matmul`. */
    readonly op: string,
    message: string,
  ) {
    super(`${op}: ${message}`);
  }
}

/** Thrown when shapes do not fit together. */
export class ShapeError extends KilnError {
  /** Always 'ShapeError'. */
  override name = 'ShapeError';
}

/** Thrown when a dtype is not accepted. */
export class DTypeError extends KilnError {
  /** Always 'DTypeError'. */
  override name = 'DTypeError';
}

/** Thrown when tensors live on different backends, or a backend cannot do what was asked. */
export class BackendError extends KilnError {
  /** Always 'BackendError'. */
  override name = 'BackendError';
}

/** Thrown when a disposed tensor is used. */
export class DisposedError extends KilnError {
  /** Always 'DisposedError'. */
  override name = 'DisposedError';
}

/** Thrown by autograd when a gradient cannot be computed correctly. */
export class AutogradError extends KilnError {
  /** Always 'AutogradError'. */
  override name = 'AutogradError';
}

/** Formats a shape the way error messages show it: `[2, 3]`. */
export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}
