// Kiln vs PyTorch for the 'shape' ops of tests/reference/gen_ops.py, on every
// backend (tolerances per op in tests/parity/ops-table.ts).
import { describeParity } from './parity/suite.js';

await describeParity('shape');
