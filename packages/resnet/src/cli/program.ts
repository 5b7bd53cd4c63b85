import { Command, CommanderError, Option } from 'commander';
import { classify } from './classify.js';
import { BACKENDS, positiveInt } from './common.js';
import { features } from './features.js';
import { exportModel, QUANTIZE_MODES } from './export.js';
import { info } from './info.js';
import { tune } from './tune.js';
import { CliError, oneLine, type CliIO } from './io.js';

const backendOption = () => new Option('--backend <name>', 'compute backend').choices([...BACKENDS]).default('cpu');

/** The `kiln` program (commander), writing to `io`. */
export function kilnProgram(io: CliIO): Command {
  const program = new Command('kiln')
    .description('ResNet18/34 on Kiln: classify images, extract features, export ONNX, inspect PyTorch weight files')
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) })
    .exitOverride();

  program
    .command('classify')
    .description('top-k ImageNet classes of each image (Resize 256, CenterCrop 224, Normalize)')
    .requiredOption('-w, --weights <file>', 'resnet18/34 weights (.pth from torch.save, or .safetensors)')
    .argument('<images...>', 'PNG or JPEG files')
    .addOption(backendOption())
    .option('-k, --topk <k>', 'classes to show per image', positiveInt('--topk'), 5)
    .option('-b, --batch-size <n>', 'images per forward pass', positiveInt('--batch-size'), 8)
    .option('--labels <file>', 'class names (JSON array or one per line); default ImageNet for 1000 classes')
    .option('--json', 'print JSON instead of text')
    .option('--no-progress', 'no progress bar')
    .action((images: string[], opts) => classify(io, images, opts));

  program
    .command('features')
    .description('512-d pooled features (the input of fc) of each image')
    .requiredOption('-w, --weights <file>', 'resnet18/34 weights (.pth or .safetensors)')
    .argument('<images...>', 'PNG or JPEG files')
    .addOption(backendOption())
    .option('-o, --out <file>', 'write .json or .npy (float32 [N, 512]) instead of JSON on stdout')
    .option('-b, --batch-size <n>', 'images per forward pass', positiveInt('--batch-size'), 8)
    .option('--no-progress', 'no progress bar')
    .action((images: string[], opts) => features(io, images, opts));

  program
    .command('export')
    .description('the model as ONNX (torch.onnx.export): input `input` [1, 3, size, size], output `logits`; fp32, or int8 with --quantize')
    .requiredOption('-w, --weights <file>', 'resnet18/34 weights (.pth or .safetensors)')
    .requiredOption('-o, --out <file>', 'the .onnx file to write')
    .option('--opset <n>', 'ONNX opset (13 to 17)', positiveInt('--opset'), 17)
    .option('--dynamic-batch', 'make the batch dimension dynamic (dim_param "batch")', false)
    .option('--size <n>', 'input height and width', positiveInt('--size'), 224)
    .option('--no-fold-batch-norm', 'keep BatchNormalization nodes instead of folding them into the convs')
    .addOption(new Option('--quantize <mode>', 'dynamic: fc int8 (MatMulInteger); static: int8 throughout, calibrated, in QDQ form').choices([...QUANTIZE_MODES]))
    .option('--calibrate <images...>', 'PNG or JPEG files that calibrate --quantize static (eval preprocessing at --size)')
    .addOption(backendOption())
    .action((opts) => exportModel(io, opts));

  program
    .command('info')
    .description('tensors, shapes, dtypes and parameter count of a weight file')
    .argument('<weights>', '.pth or .safetensors file')
    .action((path: string) => info(io, path));

  program
    .command('tune')
    .description("pre-tune ResNet18's convs on this WebGPU adapter: time each route, keep the winners in a JSON cache")
    .option('--cache <file>', 'the tuning cache to read and write (default KILN_TUNE_CACHE)')
    .option('--batch <list>', 'comma-separated batch sizes to tune', (v: string) => v.split(',').map((b) => positiveInt('--batch')(b.trim())), [1, 8])
    .option('--size <n>', 'input height and width', positiveInt('--size'), 224)
    .option('--training', 'also tune the input-gradient convs of a training step', false)
    .option('--json', 'print JSON instead of text')
    .action((opts) => tune(io, opts));

  return program;
}

/**
 * Runs `kiln` with `argv` (without `node` and the script) and returns the
 * exit status: 0, or 1 after printing one line `kiln: <message>` for any
 * error (bad arguments, missing or malformed files, wrong weights).
 */
export async function runKiln(argv: string[], io: CliIO): Promise<number> {
  const program = kilnProgram(io);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Commander already printed its message (or help/version, exit code 0).
      return e.exitCode === 0 ? 0 : 1;
    }
    if (e instanceof CliError || e instanceof Error) {
      io.stderr.write(`kiln: ${oneLine(e)}\n`);
      return 1;
    }
    io.stderr.write(`kiln: ${String(e)}\n`);
    return 1;
  }
}
