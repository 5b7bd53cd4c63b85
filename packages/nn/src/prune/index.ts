/**
 * torch.nn.utils.prune in camelCase, exported from `@kiln/nn` as `prune`.
 *
 * Pruning `module[name]` keeps the original Parameter as `name_orig` (an
 * optimizer built before pruning keeps training it), adds the buffer
 * `name_mask` (the weight's dtype, 1 = kept) and makes `module[name]` a
 * plain tensor, `name_mask * name_orig`, recomputed by a forward pre-hook —
 * and read by every path, the fused ResNet inference included
 * (Module.effectiveTensor). Gradients reach `name_orig` and are zero where
 * masked. State-dict keys are PyTorch's (`conv1.weight_orig`,
 * `conv1.weight_mask`), so pruned state dicts move both ways.
 *
 * The pruning functions are async: they read the importance scores back
 * once and choose on the host. Amounts: an integer is a count, a
 * non-integer a fraction in (0, 1) rounded half to even (Python's round);
 * `prune.fraction(1)` is PyTorch's `amount=1.0`. Ties in importance are
 * pruned lowest flat index (or channel) first, where PyTorch's topk leaves
 * them unspecified. Random methods draw from Kiln's seeded generator
 * (manualSeed), so a seed gives one mask on every backend.
 *
 * @packageDocumentation
 */
export { fraction, type PruneAmount, type PruneFraction } from './amount.js';
export { BasePruningMethod, PruningContainer, type PruningType, type PruningMethodClass, type ImportanceOptions } from './base.js';
export {
  Identity,
  L1Unstructured,
  RandomUnstructured,
  LnStructured,
  RandomStructured,
  CustomFromMask,
  type UnstructuredOptions,
  type RandomOptions,
  type LnStructuredOptions,
  type RandomStructuredOptions,
  type CustomFromMaskOptions,
} from './methods.js';
export {
  l1Unstructured,
  randomUnstructured,
  lnStructured,
  randomStructured,
  customFromMask,
  identity,
  globalUnstructured,
  remove,
  isPruned,
  type GlobalOptions,
} from './functional.js';
export { sparsity, type SparsityReport, type TensorSparsity, type GlobalSparsity } from './sparsity.js';
