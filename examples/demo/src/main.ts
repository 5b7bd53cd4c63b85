#!/usr/bin/env node
// `npm run demo` (after setup): parses the flags and runs the demo. All logic is in run.ts.
import { Command, InvalidArgumentError } from 'commander';
import { DemoError, type DemoOptions } from './options.js';
import { consoleIO } from './progress.js';
import { runDemo } from './run.js';

const int = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n)) throw new InvalidArgumentError(`expected an integer, got '${v}'`);
  return n;
};
const fraction = (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new InvalidArgumentError(`expected a number, got '${v}'`);
  return n;
};

const program = new Command('demo')
  .description('ResNet18 on Fashion-MNIST with Kiln: pretraining, transfer learning, features, pruning, int8, ONNX, timing, and a report of charts')
  .option('--quick', 'every stage on a sliver of the data (under a minute; what CI runs)')
  .option('--epochs <n>', 'transfer-learning epochs (and the from-scratch comparison)', int)
  .option('--pretrain-epochs <n>', 'pretraining epochs', int)
  .option('--batch-size <n>', 'batch size of transfer learning, the from-scratch run and fine-tuning', int)
  .option('--pretrain-batch-size <n>', 'batch size of pretraining', int)
  .option('--image-size <n>', 'input size the 28×28 images are upscaled to (≥ 32)', int)
  .option('--out <dir>', 'output folder', 'demo-output')
  .option('--backend <name>', 'auto (WebGPU when an adapter exists), webgpu or cpu', 'auto')
  .option('--weights <file>', 'a torchvision resnet18 .pth (e.g. resnet18-f37072fd.pth): skip pretraining, transfer from it')
  .option('--seed <n>', 'seed of data order, augmentation and initialisation', int)
  .option('--retrain', 'pretrain again even when the backbone is cached')
  .option('--data <dir>', "Fashion-MNIST idx files, or 'embedded' / 'debian' (default: Debian's full set when installed, else the embedded subset)")
  .option('--cache-dir <dir>', 'backbone cache (default $KILN_CACHE_DIR, $XDG_CACHE_HOME/kiln or ~/.cache/kiln)')
  .option('--train-per-class <n>', 'transfer-learning training images per class', int)
  .option('--pretrain-per-class <n>', 'pretraining images per class', int)
  .option('--test-per-class <n>', 'test images per class', int)
  .option('--prune-amount <x>', 'fraction of weights global L1 pruning removes', fraction)
  .option('--shrink-amount <x>', "fraction of every block's inner channels channel shrinking removes (rounded to a multiple of 1/8)", fraction)
  .option('--no-store-prefix', 'run the frozen layers of transfer and the fine-tunes every step instead of computing them once (slower, same items and order)')
  .option('--no-progress', 'no progress bars');

program.parse();
const { progress, ...flags } = program.opts<DemoOptions & { progress: boolean }>();
try {
  await runDemo(flags, consoleIO(progress));
  process.exit(0);
} catch (e) {
  if (e instanceof DemoError) {
    console.error(`demo: ${e.message}`);
    process.exit(1);
  }
  throw e;
}
