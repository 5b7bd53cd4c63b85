export { LRScheduler, type SchedulerStateDict } from './scheduler.js';
export { StepLR, MultiStepLR, LinearLR, CosineAnnealingLR, LambdaLR, SequentialLR } from './schedulers.js';
