/**
 * The GPU timestamp profile of one forward, as a horizontal bar chart
 * (Chart.js) of milliseconds per kernel, slowest first.
 */
import { fromArray, getBackend, noGrad } from '@kiln/core';
import type { KernelTime, WebGPUBackend } from '@kiln/kernels';
import type { ImageTensor, ResNet } from '@kiln/resnet';
import { BarController, BarElement, CategoryScale, Chart, LinearScale, Title, Tooltip } from 'chart.js';

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Title, Tooltip);

/** A profiled forward: per-kernel times and whether they are GPU timestamps. */
export interface ForwardProfile {
  kernels: KernelTime[];
  totalMs: number;
  timestamps: boolean;
}

/** Profiles one eval forward of `image` on the WebGPU backend (null on another backend). */
export async function profileForward(model: ResNet, image: ImageTensor, device: string): Promise<ForwardProfile | null> {
  if (device !== 'webgpu') return null;
  const backend = getBackend('webgpu') as unknown as WebGPUBackend;
  const x = fromArray(image.data, [1, ...image.shape], { device });
  try {
    // A warm-up forward first, so the profile shows kernels, not pipeline compiles.
    noGrad(() => model.call(x)).dispose();
    await backend.sync();
    const kernels = await backend.profile(() => noGrad(() => model.call(x)).dispose());
    return { kernels, totalMs: kernels.reduce((s, k) => s + k.ms, 0), timestamps: backend.info.features.includes('timestamp-query') };
  } finally {
    x.dispose();
  }
}

let chart: Chart | null = null;

/** Draws (or redraws) `profile` into `canvas`: the `limit` slowest kernels. */
export function drawProfile(canvas: HTMLCanvasElement, profile: ForwardProfile, limit = 16): void {
  const rows = profile.kernels.slice(0, limit);
  chart?.destroy();
  chart = new Chart(canvas, {
    type: 'bar',
    data: {
      labels: rows.map((k) => `${k.kernel} ×${k.count}`),
      datasets: [{ label: 'ms', data: rows.map((k) => k.ms), backgroundColor: '#d9622b' }],
    },
    options: {
      indexAxis: 'y',
      animation: false,
      responsive: false,
      plugins: {
        title: { display: true, text: `forward: ${profile.totalMs.toFixed(1)} ms of ${profile.timestamps ? 'GPU timestamps' : 'wall clock per dispatch'} over ${profile.kernels.length} kernels` },
        tooltip: { enabled: true },
      },
      scales: { x: { title: { display: true, text: 'ms' } } },
    },
  });
}
