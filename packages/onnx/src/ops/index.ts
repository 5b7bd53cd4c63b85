// Every Kiln op an eval-mode forward can record, mapped to ONNX.
import type { Emitter } from '../emit.js';
import { NN_EMITTERS } from './nn.js';
import { ELEMENTWISE_EMITTERS } from './elementwise.js';
import { SHAPE_EMITTERS } from './shape.js';
import { REDUCE_EMITTERS } from './reduce.js';
import { QUANTIZED_EMITTERS } from './quantized.js';
import { QDQ_EMITTERS } from './qdq.js';

/** Kiln op name to its ONNX mapping. */
export const EMITTERS: Record<string, Emitter> = {
  ...NN_EMITTERS,
  ...ELEMENTWISE_EMITTERS,
  ...SHAPE_EMITTERS,
  ...REDUCE_EMITTERS,
  ...QUANTIZED_EMITTERS,
  ...QDQ_EMITTERS,
};
