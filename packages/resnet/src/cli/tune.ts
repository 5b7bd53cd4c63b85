import { noGrad, randn, tidy, type Tensor } from '@kiln/core';
import { resnet18 } from '../model/resnet.js';
import { useBackend } from './common.js';
import { CliError, type CliIO } from './io.js';

/** Options of `kiln tune`. */
export interface TuneCliOptions {
  cache?: string;
  batch: number[];
  size: number;
  training: boolean;
  json?: boolean;
}

/**
 * `kiln tune`: pre-tunes the convs of ResNet18 on this WebGPU adapter. One
 * eval forward per batch size (and, with --training, one training forward
 * and backward) queues every conv shape; the autotuner (@kiln/kernels
 * autotune.ts) then times each shape's candidate routes, checks them against
 * the direct kernel, and writes the winners to the cache file, which a later
 * run with `KILN_TUNE_CACHE` (or enableAutotune) reads.
 */
export async function tune(io: CliIO, opts: TuneCliOptions): Promise<void> {
  const cache = opts.cache ?? process.env.KILN_TUNE_CACHE;
  if (!cache) throw new CliError('no cache file: pass --cache <file> or set KILN_TUNE_CACHE');
  await useBackend('webgpu');
  const kernels = await import('@kiln/kernels');
  const backend = await kernels.initWebGPU();
  const loaded = await kernels.enableAutotune(backend, { cache });
  const model = resnet18({ device: 'webgpu' });
  try {
    for (const batch of opts.batch) {
      const x = randn([batch, 3, opts.size, opts.size], { device: 'webgpu' });
      model.eval();
      const logits = noGrad(() => model.call(x) as Tensor);
      await logits.toArray();
      logits.dispose();
      if (opts.training) {
        model.train();
        const loss = tidy(() => (model.call(x) as Tensor).sum());
        loss.backward();
        loss.dispose();
        await backend.sync();
        model.zeroGrad();
      }
      x.dispose();
    }
    const pending = kernels.autotuneState(backend)?.pending ?? 0;
    const done = await kernels.tunePending(backend);
    if (opts.json) {
      io.stdout.write(`${JSON.stringify({ cache, loaded, tuned: done, adapter: backend.info.description, strategy: backend.tuning.strategy })}\n`);
      return;
    }
    io.stdout.write(`${backend.info.description} (${backend.tuning.strategy} strategy): ${loaded} shapes already in ${cache}, ${pending} tuned now\n`);
    for (const [key, r] of Object.entries(done)) {
      const times = Object.entries(r.ms).map(([route, ms]) => `${route} ${ms === null ? 'failed check' : `${ms!.toFixed(2)} ms`}`).join(', ');
      io.stdout.write(`${key}: ${r.route} (${times})\n`);
    }
  } finally {
    model.releaseFolded();
    model.dispose();
  }
}
