import type { BackendStorage } from '../backend.js';
import { allocArray, type DType, type TypedArray } from '../dtype.js';

/** CPU memory: a plain host array. */
export class CpuStorage implements BackendStorage {
  readonly data: TypedArray;
  constructor(
    readonly size: number,
    readonly dtype: DType,
  ) {
    this.data = allocArray(dtype, size);
  }
}
