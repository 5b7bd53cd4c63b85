/**
 * Peer: TF.js 4.22 with its WebGPU backend, on the same Dawn instance (and
 * so the same adapter) as Kiln; and TF.js's WASM backend (XNNPACK, SIMD,
 * threads where the runtime allows) on the CPU, the same TF.js module with
 * the active backend switched per runner. NHWC activations and HWIO filters, TF.js's
 * native layout; ResNet18 uses the same BN-folded weights as Kiln's eval
 * model with tf.fused.conv2d (bias + ReLU; the residual add is a separate op,
 * as TF.js's fused conv has no residual input).
 */
import type * as tfc from '@tensorflow/tfjs-core';
import { RESNET18_BLOCKS, RESNET18_CONV_NAMES } from '../architecture.js';
import { convOut, type ConvDirection, type ConvShape, type Nchw, type Runner } from '../cases.js';
import { foldConvBn, inputBatch, type HostTensor, type ResNetAssets } from '../weights.js';
import { cooperativeWait } from '@kiln/kernels';

type TF = typeof tfc;

/** The parts of tfjs-backend-webgpu's backend the harness drives. */
interface WebGPUBackendLike {
  device: GPUDevice;
  endComputePassEncoder(): void;
  submitQueue(): void;
}

/** OIHW -> HWIO. */
function toHwio(w: HostTensor): { shape: [number, number, number, number]; data: Float32Array } {
  const [O, I, H, W] = w.shape as [number, number, number, number];
  const out = new Float32Array(w.data.length);
  for (let o = 0; o < O; o++)
    for (let i = 0; i < I; i++)
      for (let h = 0; h < H; h++)
        for (let x = 0; x < W; x++) out[((h * W + x) * I + i) * O + o] = w.data[((o * I + i) * H + h) * W + x]!;
  return { shape: [H, W, I, O], data: out };
}

/** NCHW -> NHWC. */
export function toNhwc(t: HostTensor): { shape: [number, number, number, number]; data: Float32Array } {
  const [N, C, H, W] = t.shape as [number, number, number, number];
  const out = new Float32Array(t.data.length);
  for (let n = 0; n < N; n++)
    for (let c = 0; c < C; c++)
      for (let i = 0; i < H * W; i++) out[(n * H * W + i) * C + c] = t.data[(n * C + c) * H * W + i]!;
  return { shape: [N, H, W, C], data: out };
}

export class TfjsPeer {
  private constructor(
    readonly tf: TF,
    private readonly backend: WebGPUBackendLike | null,
    readonly version: string,
    /** The TF.js backend this peer's runners use: 'webgpu' or 'wasm'. */
    readonly backendName: 'webgpu' | 'wasm' = 'webgpu',
  ) {}

  /**
   * The WASM peer: the same TF.js module with @tensorflow/tfjs-backend-wasm
   * registered (its .wasm files from the package, SIMD and, where Node's
   * workers allow, threads: one per core).
   */
  static async createWasm(): Promise<TfjsPeer> {
    const tf = (await import('@tensorflow/tfjs-core')) as TF;
    const wasm = (await import('@tensorflow/tfjs-backend-wasm')) as {
      setWasmPaths(prefix: string): void; setThreadsCount(n: number): void; getThreadsCount(): number; version_wasm: string;
    };
    const { createRequire } = await import('node:module');
    const { dirname } = await import('node:path');
    const os = await import('node:os');
    const dist = dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm'));
    wasm.setWasmPaths(`${dist}/`);
    wasm.setThreadsCount(os.cpus().length);
    const before = tf.getBackend();
    if (!(await tf.setBackend('wasm'))) throw new Error('tf.setBackend("wasm") failed');
    await tf.ready();
    const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
    const threads = await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT');
    const version = `${tf.version_core}/wasm ${wasm.version_wasm} (SIMD ${simd ? 'on' : 'off'}, threads ${threads ? wasm.getThreadsCount() : 'off'})`;
    if (before) await tf.setBackend(before);
    return new TfjsPeer(tf, null, version, 'wasm');
  }

  /** Makes this peer's backend TF.js's active one (runners call it first). */
  async activate(): Promise<void> {
    if (this.tf.getBackend() !== this.backendName) await this.tf.setBackend(this.backendName);
  }

  /** Imports TF.js with navigator.gpu set to `gpu` and selects its WebGPU backend. */
  static async create(gpu: GPU): Promise<TfjsPeer> {
    const g = globalThis as { navigator?: { gpu?: GPU } };
    if (!g.navigator) Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
    else if (!g.navigator.gpu) Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true });
    const tf = (await import('@tensorflow/tfjs-core')) as TF;
    const webgpu = (await import('@tensorflow/tfjs-backend-webgpu')) as { version_webgpu?: string };
    if (!(await tf.setBackend('webgpu'))) throw new Error('tf.setBackend("webgpu") failed');
    await tf.ready();
    return new TfjsPeer(tf, tf.backend() as unknown as WebGPUBackendLike, `${tf.version_core}/webgpu ${webgpu.version_webgpu ?? tf.version_core}`);
  }

  /** Submits everything TF.js has encoded and waits for the queue. */
  async sync(): Promise<void> {
    // WASM kernels run synchronously inside the op: nothing is queued.
    const backend = this.backend;
    if (!backend) return;
    backend.endComputePassEncoder();
    backend.submitQueue();
    // The same slowed poll Kiln's runtime waits with, so both are timed alike.
    await cooperativeWait(1, () => backend.device.queue.onSubmittedWorkDone());
  }

  /** A runner that evaluates `op` on the GPU and waits for it; `inputs` are disposed with the runner. */
  private runner(inputs: tfc.Tensor[], op: () => tfc.TensorContainer): Runner {
    return {
      run: async () => {
        await this.activate();
        const out = this.tf.tidy(op);
        await this.sync();
        this.tf.dispose(out);
      },
      dispose: () => this.tf.dispose(inputs),
    };
  }

  gemm(n: number): Runner {
    const a = this.tf.randomNormal([n, n]);
    const b = this.tf.randomNormal([n, n]);
    return this.runner([a, b], () => this.tf.matMul(a, b));
  }

  conv(c: ConvShape, dir: ConvDirection, N: number): Runner {
    const tf = this.tf;
    const [oh, ow] = convOut(c);
    const pad: [[number, number], [number, number], [number, number], [number, number]] = [[0, 0], [c.p, c.p], [c.p, c.p], [0, 0]];
    const strides: [number, number] = [c.s, c.s];
    const x = tf.randomNormal([N, c.H, c.W, c.C]) as tfc.Tensor4D;
    const w = tf.randomNormal([c.k, c.k, c.C, c.O]) as tfc.Tensor4D;
    const dy = tf.randomNormal([N, oh, ow, c.O]) as tfc.Tensor4D;
    const attrs = { strides, pad, dataFormat: 'NHWC', dimRoundingMode: undefined } as const;
    const op =
      dir === 'forward'
        ? () => tf.conv2d(x, w, strides, pad)
        : dir === 'input_grad'
          ? () => tf.engine().runKernel('Conv2DBackpropInput', { dy, filter: w }, { ...attrs, inputShape: x.shape } as unknown as tfc.NamedAttrMap) as tfc.Tensor
          : () => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { ...attrs, filterShape: w.shape } as unknown as tfc.NamedAttrMap) as tfc.Tensor;
    return this.runner([x, w, dy], op);
  }

  /**
   * Training-mode BatchNorm forward (batch moments) and its backward to x,
   * gamma and beta. tfjs-core's Node bundle registers no gradient functions
   * (the tfjs union package does), so the backward is the analytic formula
   * in TF.js ops: dβ = Σdy, dγ = Σdy·x̂, dx = γ·σ⁻¹/M · (M·dy − dβ − x̂·dγ).
   */
  batchNormTrain(s: Nchw): Runner {
    const tf = this.tf;
    const x = tf.randomNormal([s.N, s.H, s.W, s.C]);
    const gamma = tf.ones([s.C]);
    const beta = tf.zeros([s.C]);
    const dy = tf.randomNormal(x.shape);
    const axes = [0, 1, 2];
    const M = s.N * s.H * s.W;
    return this.runner([x, gamma, beta, dy], () => {
      const { mean, variance } = tf.moments(x, axes);
      const invStd = tf.rsqrt(tf.add(variance, 1e-5));
      const xhat = tf.mul(tf.sub(x, mean), invStd);
      const y = tf.add(tf.mul(xhat, gamma), beta);
      const dBeta = tf.sum(dy, axes);
      const dGamma = tf.sum(tf.mul(dy, xhat), axes);
      const dx = tf.mul(tf.mul(gamma, tf.div(invStd, M)), tf.sub(tf.sub(tf.mul(dy, M), dBeta), tf.mul(xhat, dGamma)));
      return [y, dx, dGamma, dBeta];
    });
  }

  maxPool(s: Nchw): Runner {
    const x = this.tf.randomNormal([s.N, s.H, s.W, s.C]) as tfc.Tensor4D;
    return this.runner([x], () => this.tf.maxPool(x, 3, 2, 1));
  }

  adaptiveAvgPool(s: Nchw): Runner {
    const x = this.tf.randomNormal([s.N, s.H, s.W, s.C]);
    return this.runner([x], () => this.tf.mean(x, [1, 2], true));
  }

  resnet(assets: ResNetAssets): TfjsResNet18 {
    return new TfjsResNet18(this, assets);
  }
}

/** ResNet18 inference in TF.js ops with BN folded (the same numbers as Kiln's eval model). */
export class TfjsResNet18 {
  private readonly convs = new Map<string, { filter: tfc.Tensor4D; bias: tfc.Tensor1D }>();
  private readonly fcWeight: tfc.Tensor2D;
  private readonly fcBias: tfc.Tensor1D;

  constructor(private readonly peer: TfjsPeer, private readonly assets: ResNetAssets) {
    const tf = peer.tf;
    for (const name of RESNET18_CONV_NAMES) {
      const { weight, bias } = foldConvBn(assets.params, name);
      const hwio = toHwio(weight);
      this.convs.set(name, { filter: tf.tensor4d(hwio.data, hwio.shape), bias: tf.tensor1d(bias.data) });
    }
    const fc = assets.params.get('fc.weight')!;
    this.fcWeight = tf.tensor2d(fc.data, fc.shape as [number, number]);
    this.fcBias = tf.tensor1d(assets.params.get('fc.bias')!.data);
  }

  private conv(name: string, x: tfc.Tensor4D, stride: number, padding: number, relu: boolean): tfc.Tensor4D {
    const c = this.convs.get(name)!;
    const pad: [[number, number], [number, number], [number, number], [number, number]] = [[0, 0], [padding, padding], [padding, padding], [0, 0]];
    return this.peer.tf.fused.conv2d({ x, filter: c.filter, strides: stride, pad, bias: c.bias, activation: relu ? 'relu' : 'linear' });
  }

  /** Logits [N, 1000] of an NHWC batch. */
  forward(x: tfc.Tensor4D): tfc.Tensor2D {
    const tf = this.peer.tf;
    return tf.tidy((): tfc.Tensor2D => {
      let h = this.conv('conv1', x, 2, 3, true);
      h = tf.maxPool(h, 3, 2, 1);
      for (const b of RESNET18_BLOCKS) {
        const identity = b.downsample ? this.conv(`${b.prefix}.downsample.0`, h, b.stride, 0, false) : h;
        const mid = this.conv(`${b.prefix}.conv1`, h, b.stride, 1, true);
        h = tf.relu(tf.add(this.conv(`${b.prefix}.conv2`, mid, 1, 1, false), identity)) as tfc.Tensor4D;
      }
      const pooled = tf.mean(h, [1, 2]) as tfc.Tensor2D;
      // tfjs-backend-wasm 4.22's fused matMul with transposeB adds the bias wrongly (max error 5 on
      // [2,512] x [1000,512]^T, checked against JS loops); unfused matMul + add is exact.
      if (this.peer.backendName === 'wasm') return tf.add(tf.matMul(pooled, this.fcWeight, false, true), this.fcBias) as tfc.Tensor2D;
      return tf.fused.matMul({ a: pooled, b: this.fcWeight, transposeB: true, bias: this.fcBias }) as tfc.Tensor2D;
    });
  }

  /** The input batch, NHWC, on TF.js's GPU. */
  input(batch: number): tfc.Tensor4D {
    const nhwc = toNhwc(inputBatch(this.assets, batch));
    return this.peer.tf.tensor4d(nhwc.data, nhwc.shape);
  }

  /** A runner timing forward(batch). */
  forwardRunner(batch: number): Runner {
    // Created on the first run, once this peer's backend is the active one.
    let x: tfc.Tensor4D | null = null;
    return {
      run: async () => {
        await this.peer.activate();
        x ??= this.input(batch);
        const y = this.forward(x);
        await this.peer.sync();
        y.dispose();
      },
      dispose: () => x?.dispose(),
    };
  }

  /** The logits of the first `batch` inputs, read back. */
  async logits(batch: number): Promise<Float32Array> {
    await this.peer.activate();
    const x = this.input(batch);
    const y = this.forward(x);
    const data = (await y.data()) as Float32Array;
    x.dispose();
    y.dispose();
    return data;
  }

  dispose(): void {
    for (const c of this.convs.values()) this.peer.tf.dispose([c.filter, c.bias]);
    this.peer.tf.dispose([this.fcWeight, this.fcBias]);
  }
}
