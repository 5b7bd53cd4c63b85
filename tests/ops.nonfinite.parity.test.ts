// NaN and +-Inf through Kiln's ops, against PyTorch (tests/reference/gen_nonfinite.py):
// elementwise arithmetic and comparisons over every pairing of special values,
// max/min and arg-reductions (NaN wins, its index is returned), relu, softmax /
// logSoftmax / logsumexp with NaN and Inf rows, sums and means, max/avg/adaptive
// pooling and conv with planted NaN/Inf, on every backend. A NaN must come out
// where PyTorch's does (expectClose treats NaN as equal only to NaN, and an
// infinity only to itself); finite values keep each op's tolerance from the
// ops and CNN tables.
import { CNN_OPS } from './parity/cnn-table.js';
import { OPS } from './parity/ops-table.js';
import { describeTableParity } from './parity/table-suite.js';
import type { Table } from './parity/table-case.js';

const TABLE: Table = { ...OPS, ...CNN_OPS };

await describeTableParity('parity non-finite values', 'nonfinite', TABLE, () => true);
