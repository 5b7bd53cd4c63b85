/**
 * Weight-file readers and writers on plain typed arrays: PyTorch `.pth`
 * (zip format, allow-listed unpickling) and safetensors.
 */
export { FormatError } from '@kiln/core';
export {
  allocRaw,
  bitsToFloat32,
  halfToFloat,
  rawItemSize,
  shapeSize,
  widenToKiln,
  type KilnDType,
  type RawArray,
  type RawDType,
  type RawTensor,
  type WidenOptions,
} from '@kiln/core';
export { loadPth, PyOrderedDict, type LoadPthOptions, type PthFile } from './pth.js';
export {
  readSafetensors,
  writeSafetensors,
  SAFETENSORS_MAX_HEADER,
  type ReadSafetensorsOptions,
  type SafetensorsFile,
} from '@kiln/core';
export { unpickle, pyCallable, type PyCallable, type UnpicklerHooks } from './unpickler.js';
