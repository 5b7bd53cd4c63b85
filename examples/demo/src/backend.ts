import { setDefaultBackend } from '@kiln/core';
import { cpus } from 'node:os';
import { DemoError } from './options.js';
import type { DemoIO } from './progress.js';

const cpuName = () => `${cpus()[0]?.model.trim() ?? 'unknown CPU'}, ${cpus().length} cores`;

/**
 * Makes the run's backend the default: WebGPU when an adapter exists (or
 * when asked for, failing if there is none), else the CPU backend; says
 * which, and why, in one line.
 */
export async function chooseBackend(want: 'auto' | 'webgpu' | 'cpu', io: DemoIO): Promise<{ device: 'webgpu' | 'cpu'; description: string }> {
  if (want !== 'cpu') {
    try {
      const { initWebGPU } = await import('@kiln/kernels');
      const backend = await initWebGPU();
      const i = backend.info;
      const description = `WebGPU: ${[i.vendor, i.architecture, i.description].filter(Boolean).join(' ')} via ${i.runtime}, on ${cpuName()}`;
      setDefaultBackend('webgpu');
      io.log(`backend: ${description}`);
      return { device: 'webgpu', description };
    } catch (e) {
      const why = (e as Error).message.split('\n')[0];
      if (want === 'webgpu') throw new DemoError(`--backend webgpu: no WebGPU adapter (${why})`);
      io.log(`backend: CPU (no WebGPU adapter: ${why})`);
    }
  }
  setDefaultBackend('cpu');
  const description = `CPU backend on ${cpuName()}`;
  if (want === 'cpu') io.log(`backend: ${description} (--backend cpu)`);
  return { device: 'cpu', description };
}
