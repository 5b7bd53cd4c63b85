import { KilnError } from '../errors.js';

/**
 * The error the weight-file readers and the image pipeline throw on a
 * malformed or hostile input: it names the function and says what was
 * expected and what came (`${op}: ${message}`).
 */
export class FormatError extends KilnError {
  /** Always 'FormatError'. */
  override name = 'FormatError';
}
