export { freezeBatchNorm, type FreezeBatchNormOptions, type FrozenBatchNorm } from './freeze-batchnorm.js';
