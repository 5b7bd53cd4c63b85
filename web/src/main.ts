/**
 * The page: WebGPU start-up (with the CPU backend as a stated fallback),
 * weights, classification with a kernel profile, head fine-tuning and
 * export. Everything the page shows is also in the DOM as data attributes,
 * which is how tests/browser.page.test.ts reads it.
 */
import { setDefaultBackend } from '@kiln/core';
import { initWebGPU } from '@kiln/kernels';
import { classify } from './classify.js';
import { exportOnnxFile, exportSafetensors, type ExportedFile } from './export.js';
import { fineTuneHead } from './finetune.js';
import { prepareImage, type PreparedImage } from './images.js';
import { drawProfile, profileForward } from './profile.js';
import { modelFromBytes, parseLabels, type LoadedModel } from './weights.js';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

let device = 'cpu';
let loaded: LoadedModel | null = null;
let training: { image: PreparedImage; url: string; input: HTMLInputElement }[] = [];

/** Shows a message at the top of the page (and in the console for tests). */
function message(kind: 'error' | 'warning' | 'info', text: string): void {
  const p = document.createElement('p');
  p.className = kind;
  p.textContent = text;
  $('messages').append(p);
  (kind === 'error' ? console.error : console.info)(`[kiln page] ${text}`);
}

const describe = (e: unknown) => (e instanceof Error ? e.message : String(e));
const bytesOf = async (f: File) => new Uint8Array(await f.arrayBuffer());
const tick = () => new Promise((r) => setTimeout(r, 0));

async function startBackend(): Promise<void> {
  try {
    const backend = await initWebGPU();
    device = 'webgpu';
    const { vendor, architecture, features } = backend.info;
    $('backend').textContent = `WebGPU: ${vendor} ${architecture} (${features.filter((f) => ['shader-f16', 'subgroups', 'timestamp-query'].includes(f)).join(', ') || 'no optional features'})`;
  } catch (e) {
    device = 'cpu';
    $('backend').textContent = 'CPU backend (no WebGPU)';
    message('warning', `WebGPU is not available in this browser (${describe(e)}). Kiln runs on its CPU backend instead, which is much slower. Chrome/Edge 113+ have WebGPU; elsewhere enable it in the browser's flags.`);
  }
  setDefaultBackend(device);
  document.body.dataset.backend = device;
}

/** A labels file (.json array or .txt lines) dropped after the weights names the model's classes. */
async function loadLabelsFile(file: File): Promise<void> {
  if (!loaded) return message('error', `${file.name}: load weights first, then their labels.`);
  try {
    const labels = parseLabels(await file.text(), file.name);
    if (labels.length !== loaded.labels.length) throw new Error(`${file.name} has ${labels.length} labels, the model has ${loaded.labels.length} classes`);
    loaded.labels = labels;
    message('info', `${loaded.labels.length} class names from ${file.name}: ${labels.slice(0, 5).join(', ')}${labels.length > 5 ? ', …' : ''}`);
  } catch (e) {
    message('error', describe(e));
  }
}

async function loadWeightsFile(file: File): Promise<void> {
  if (/\.(json|txt)$/i.test(file.name)) return loadLabelsFile(file);
  $('model-info').textContent = `reading ${file.name}…`;
  await tick();
  try {
    const next = modelFromBytes(await bytesOf(file), file.name, device);
    loaded?.model.releaseFolded();
    loaded?.model.dispose();
    loaded = next;
    $('model-info').textContent = `${next.arch} from ${file.name}: ${next.parameters.toLocaleString('en')} parameters, ${next.labels.length} classes, on ${device}`;
    document.body.dataset.model = next.arch;
    for (const id of ['images-input', 'train-input', 'train-button', 'export-safetensors', 'export-onnx']) ($(id) as HTMLInputElement).disabled = false;
  } catch (e) {
    $('model-info').textContent = loaded ? `still ${loaded.arch} from ${loaded.source}` : 'No model loaded.';
    message('error', `${file.name} is not usable weights: ${describe(e)}`);
  }
}

async function classifyFiles(files: File[]): Promise<void> {
  if (!loaded) return message('error', 'Load weights first (step 1).');
  let last: PreparedImage | null = null;
  for (const file of files) {
    const li = document.createElement('li');
    li.className = 'result';
    li.dataset.name = file.name;
    li.textContent = `${file.name}: classifying…`;
    $('results').prepend(li);
    await tick();
    try {
      const image = await prepareImage(await bytesOf(file), file.name);
      const result = await classify(loaded.model, image.tensor, loaded.labels, device);
      li.textContent = '';
      const img = document.createElement('img');
      img.src = URL.createObjectURL(file);
      img.alt = file.name;
      const body = document.createElement('div');
      const title = document.createElement('b');
      title.textContent = file.name;
      const ms = document.createElement('span');
      ms.className = 'ms';
      ms.textContent = ` ${result.ms.toFixed(1)} ms on ${device} (${image.width}×${image.height}, decoded by ${image.decoder === 'kiln' ? 'Kiln' : 'the browser'})`;
      const ol = document.createElement('ol');
      ol.className = 'top5';
      for (const p of result.top) {
        const item = document.createElement('li');
        item.dataset.index = String(p.index);
        item.dataset.label = p.label;
        item.textContent = `${p.label} — ${(100 * p.probability).toFixed(2)}%`;
        ol.append(item);
      }
      body.append(title, ms, ol);
      li.append(img, body);
      li.dataset.ms = result.ms.toFixed(3);
      li.dataset.status = 'done';
      last = image;
    } catch (e) {
      li.classList.add('error');
      li.dataset.status = 'error';
      li.textContent = `${file.name}: ${describe(e)}`;
      message('error', `${file.name} cannot be classified: ${describe(e)}`);
    }
  }
  if (last && device === 'webgpu') {
    try {
      const profile = await profileForward(loaded.model, last.tensor, device);
      if (profile) {
        drawProfile($('profile-chart'), profile);
        $('profile-chart').dataset.kernels = String(profile.kernels.length);
      }
    } catch (e) {
      message('warning', `profiling failed: ${describe(e)}`);
    }
  }
}

/** The label a training image starts with: its file name up to the first separator or digit. */
const labelFromName = (name: string) => name.replace(/\.[^.]*$/, '').split(/[_\-\s\d]/)[0] || name;

async function addTrainingFiles(files: File[]): Promise<void> {
  const body = ($('train-list') as HTMLTableElement).tBodies[0]!;
  for (const file of files) {
    try {
      const image = await prepareImage(await bytesOf(file), file.name);
      const row = body.insertRow();
      const url = URL.createObjectURL(file);
      const input = document.createElement('input');
      input.value = labelFromName(file.name);
      input.className = 'train-label';
      row.insertCell().innerHTML = `<img alt="">`;
      (row.cells[0]!.firstChild as HTMLImageElement).src = url;
      row.insertCell().textContent = file.name;
      row.insertCell().append(input);
      training.push({ image, url, input });
    } catch (e) {
      message('error', `${file.name} cannot be used for training: ${describe(e)}`);
    }
  }
}

async function runFineTune(): Promise<void> {
  if (!loaded) return message('error', 'Load weights first (step 1).');
  const labels = training.map((t) => t.input.value.trim());
  if (training.length < 2 || new Set(labels).size < 2 || labels.some((l) => l === '')) {
    return message('error', 'Fine-tuning needs at least two labelled images with at least two different (non-empty) labels.');
  }
  const steps = Math.max(1, Math.min(500, Number(($('train-steps') as HTMLInputElement).value) || 20));
  const lr = Number(($('train-lr') as HTMLInputElement).value) || 0.001;
  const progress = $('train-progress') as HTMLProgressElement;
  progress.max = steps;
  progress.value = 0;
  ($('train-button') as HTMLButtonElement).disabled = true;
  $('train-status').textContent = 'computing features…';
  try {
    const result = await fineTuneHead(loaded.model, training.map((t) => t.image.tensor), labels, device, {
      steps,
      lr,
      onStep: async (step, loss) => {
        progress.value = step + 1;
        $('train-status').textContent = `step ${step + 1}/${steps}: loss ${loss.toFixed(4)}`;
        await tick();
      },
    });
    loaded.labels = result.labels;
    $('train-status').textContent = `trained ${result.labels.length} classes (${result.labels.join(', ')}) in ${steps} steps, ${(result.ms / 1000).toFixed(1)} s: loss ${result.losses[0]!.toFixed(4)} → ${result.losses.at(-1)!.toFixed(4)}. Classify images to use the new head.`;
    $('train-status').dataset.losses = JSON.stringify(result.losses);
  } catch (e) {
    message('error', `fine-tuning failed: ${describe(e)}`);
  } finally {
    ($('train-button') as HTMLButtonElement).disabled = false;
  }
}

function download(name: string, bytes: Uint8Array, mime: string): void {
  const url = URL.createObjectURL(new Blob([bytes as BlobPart], { type: mime }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

async function exportModel(kind: 'safetensors' | 'onnx'): Promise<void> {
  if (!loaded) return;
  $('export-status').textContent = `writing ${kind}…`;
  await tick();
  try {
    const file: ExportedFile =
      kind === 'onnx' ? await exportOnnxFile(loaded.model, loaded.labels, loaded.arch, device) : await exportSafetensors(loaded.model, loaded.labels, loaded.arch);
    download(file.name, file.bytes, file.mime);
    $('export-status').textContent = `${file.name}: ${(file.bytes.length / 1e6).toFixed(1)} MB`;
  } catch (e) {
    $('export-status').textContent = '';
    message('error', `${kind} export failed: ${describe(e)}`);
  }
}

/** Wires a drop zone and its file input to `handle`. */
function dropZone(zoneId: string, inputId: string, handle: (files: File[]) => Promise<void>): void {
  const zone = $(zoneId);
  const input = $(inputId) as HTMLInputElement;
  const run = (files: File[]) => {
    if (files.length) void handle(files).catch((e) => message('error', describe(e)));
  };
  input.addEventListener('change', () => {
    run(Array.from(input.files ?? []));
    input.value = '';
  });
  zone.addEventListener('dragover', (e) => {
    e.preventDefault();
    zone.classList.add('over');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    run(Array.from(e.dataTransfer?.files ?? []));
  });
}

async function main(): Promise<void> {
  await startBackend();
  dropZone('weights-drop', 'weights-input', (files) => loadWeightsFile(files[0]!));
  dropZone('images-drop', 'images-input', classifyFiles);
  dropZone('train-drop', 'train-input', addTrainingFiles);
  $('train-button').addEventListener('click', () => void runFineTune());
  $('export-safetensors').addEventListener('click', () => void exportModel('safetensors'));
  $('export-onnx').addEventListener('click', () => void exportModel('onnx'));
  document.body.dataset.ready = 'true';
}

void main().catch((e) => message('error', `the page failed to start: ${describe(e)}`));
