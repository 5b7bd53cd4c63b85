/**
 * The host arithmetic of PyTorch 1.13's HistogramObserver
 * (torch/ao/quantization/observer.py), replayed operation by operation so
 * its results are PyTorch's bit for bit: every float32 tensor op is one
 * `Math.fround`, every Python float op is a double, and the reductions
 * follow ATen's CPU kernels (torch.histc's linear bin search, cumsum's
 * double accumulator, sum's cascade order). Float32 arrays in, float32
 * values out; nothing here touches a device.
 */
const f32 = Math.fround;

/** ATen's utils::CeilLog2. */
function ceilLog2(x: number): number {
  return x <= 2 ? 1 : Math.floor(Math.log2(x - 1)) + 1;
}

/**
 * torch.sum of a contiguous float32 vector on an AVX2 CPU (8-lane vectors):
 * ATen's cascade_sum, i.e. vectorized_inner_sum -> row_sum (4 interleaved
 * vector rows) -> multi_row_sum (chunks of 2^levelPower rows folded into
 * up to 4 levels), then the scalar tail and the lanes, in that order. The
 * order matters: the histogram's total and the search's L2 norms are sums
 * of non-integers, and PyTorch compares them.
 */
export function torchSum(x: ArrayLike<number>): number {
  const lanes = 8;
  const n = x.length;
  const vecCount = Math.floor(n / lanes);
  const rows = Math.floor(vecCount / 4);
  const levelPower = Math.max(4, Math.floor(ceilLog2(rows) / 4));
  const step = 1 << levelPower;
  const mask = step - 1;
  // acc[level][k][lane]
  const acc = Array.from({ length: 4 }, () => Array.from({ length: 4 }, () => new Float32Array(lanes)));
  const addVec = (dst: Float32Array, v: number) => {
    for (let l = 0; l < lanes; l++) dst[l] = dst[l]! + x[v * lanes + l]!;
  };
  let i = 0;
  while (i + step <= rows) {
    for (let j = 0; j < step; j++, i++) for (let k = 0; k < 4; k++) addVec(acc[0]![k]!, i * 4 + k);
    for (let j = 1; j < 4; j++) {
      for (let k = 0; k < 4; k++) {
        for (let l = 0; l < lanes; l++) acc[j]![k]![l] = acc[j]![k]![l]! + acc[j - 1]![k]![l]!;
        acc[j - 1]![k]!.fill(0);
      }
      if ((i & (mask << (j * levelPower))) !== 0) break;
    }
  }
  for (; i < rows; i++) for (let k = 0; k < 4; k++) addVec(acc[0]![k]!, i * 4 + k);
  for (let j = 1; j < 4; j++) for (let k = 0; k < 4; k++) for (let l = 0; l < lanes; l++) acc[0]![k]![l] = acc[0]![k]![l]! + acc[j]![k]![l]!;
  const p = acc[0]!;
  for (let v = rows * 4; v < vecCount; v++) addVec(p[0]!, v);
  for (let k = 1; k < 4; k++) for (let l = 0; l < lanes; l++) p[0]![l] = p[0]![l]! + p[k]![l]!;
  let total = 0;
  for (let e = vecCount * lanes; e < n; e++) total = f32(total + x[e]!);
  for (let l = 0; l < lanes; l++) total = f32(total + p[0]![l]!);
  return total;
}

/** torch.cumsum of a float32 vector on the CPU: a double accumulator, each prefix rounded to float32. */
export function torchCumsum(x: ArrayLike<number>): Float32Array {
  const out = new Float32Array(x.length);
  let acc = 0;
  for (let i = 0; i < x.length; i++) out[i] = acc += x[i]!;
  return out;
}

/** The smallest and largest element (torch.aminmax; NaN-free input). */
export function aminmax(x: ArrayLike<number>): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}

/**
 * torch.histc(x, bins, min, max) on the CPU: equal bounds fall back to the
 * data's min/max (then widen by 1 each way); an element's bin is
 * trunc((x - min) * bins / (max - min)) in float32, the top edge belongs to
 * the last bin, elements outside [min, max] are dropped.
 */
export function torchHistc(x: ArrayLike<number>, bins: number, min: number, max: number): Float32Array {
  let left = min;
  let right = max;
  if (left === right && x.length > 0) [left, right] = aminmax(x);
  if (left === right) {
    left -= 1;
    right += 1;
  }
  if (!Number.isFinite(left) || !Number.isFinite(right) || !(left < right)) {
    throw new RangeError(`histc: range of [${left}, ${right}] is not finite and increasing`);
  }
  const lo = f32(left);
  const hi = f32(right);
  const width = f32(hi - lo);
  const hist = new Float32Array(bins);
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    if (!(v >= lo && v <= hi)) continue;
    let pos = Math.trunc(f32(f32(f32(v - lo) * bins) / width));
    if (pos === bins) pos -= 1;
    hist[pos] = hist[pos]! + 1;
  }
  return hist;
}

/** Python's int() of a float: truncation toward zero (1.13 passes `min=int(min_val)` to histc). */
export function pyInt(v: number): number {
  return Math.trunc(v);
}

/** torch.round on float32: half to even. */
function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** The grid both histograms share (HistogramObserver._adjust_min_max), in float32 tensor ops. */
export function adjustMinMax(
  minVal: number, maxVal: number, combinedMin: number, combinedMax: number, bins: number, upsampleRate: number,
): { combinedMin: number; combinedMax: number; downsampleRate: number; startIdx: number } {
  const histBinWidth = f32(f32(maxVal - minVal) / (bins * upsampleRate));
  const span = f32(bins * histBinWidth);
  const range = f32(combinedMax - combinedMin);
  const downsampleRate = Math.ceil(f32(range / span));
  if (!Number.isFinite(downsampleRate) || downsampleRate < 1) {
    throw new RangeError(`HistogramObserver: cannot align a histogram of width ${maxVal - minVal} with the range [${combinedMin}, ${combinedMax}]`);
  }
  const e = f32(f32(downsampleRate * span) - range);
  const startIdx = roundHalfEven(f32(f32(minVal - combinedMin) / histBinWidth));
  return { combinedMin, combinedMax: f32(combinedMax + e), downsampleRate, startIdx };
}

/**
 * HistogramObserver._combine_histograms: the old histogram upsampled by
 * `upsampleRate` (repeat_interleave), placed at `startIdx` on the fine
 * grid, integrated in double, sampled every `downsampleRate` fine bins and
 * differenced (the previous integral rounded to float32, as PyTorch's
 * float32 `shifted` buffer does), divided by the upsample rate and added to
 * `orig` (the new batch's histogram) in float32.
 */
export function combineHistograms(
  orig: Float32Array, old: Float32Array, upsampleRate: number, downsampleRate: number, startIdx: number,
): Float32Array {
  const bins = orig.length;
  const fine = bins * downsampleRate;
  const upsampled = old.length * upsampleRate;
  if (startIdx < 0 || startIdx + upsampled > fine) {
    throw new RangeError(`HistogramObserver: the upsampled histogram [${startIdx}, ${startIdx + upsampled}) does not fit the combined grid of ${fine} bins`);
  }
  const out = new Float32Array(bins);
  let integral = 0;
  let prev = 0;
  let k = 0;
  for (let j = 0; j < bins; j++) {
    const end = j * downsampleRate + downsampleRate;
    for (; k < end; k++) {
      const u = k - startIdx;
      if (u >= 0 && u < upsampled) integral += old[Math.floor(u / upsampleRate)]!;
    }
    out[j] = f32(orig[j]! + f32((integral - prev) / upsampleRate));
    prev = f32(integral);
  }
  return out;
}

/** c10's div_floor_floating (torch.div(a, b, rounding_mode='floor')) on float32 a, b. */
function divFloor(a: number, b: number): number {
  if (b === 0) return f32(a / b);
  const mod = a % b;
  let div = f32(f32(a - mod) / b);
  if (mod !== 0 && (b < 0) !== (mod < 0)) div = f32(div - 1);
  if (div === 0) return Math.sign(a / b) < 0 || Object.is(a / b, -0) ? -0 : 0;
  let floordiv = Math.floor(div);
  if (f32(div - floordiv) > 0.5) floordiv += 1;
  return floordiv;
}

/** HistogramObserver._get_norm on float32 operands: density * (end^3 - begin^3) / 3. */
function l2Norm(begin: number, end: number, density: number): number {
  const cube = (v: number) => f32(f32(v * v) * v);
  return f32(density * f32(f32(cube(end) - cube(begin)) / 3));
}

/**
 * HistogramObserver._compute_quantization_error: the L2 error of mapping
 * source bins [startBin, endBin] onto `dstBins` uniform destination bins.
 * `minVal`/`maxVal` are float32 values; bin widths are Python doubles,
 * rounded to float32 where they meet a tensor.
 */
export function quantizationError(
  hist: Float32Array, minVal: number, maxVal: number, startBin: number, endBin: number, dstBins: number,
): number {
  const bins = hist.length;
  const binWidth = (maxVal - minVal) / bins;
  const dstBinWidth = (binWidth * (endBin - startBin + 1)) / dstBins;
  if (dstBinWidth === 0) return 0;
  const bw = f32(binWidth);
  const dbw = f32(dstBinWidth);
  const half = f32(dstBinWidth / 2);
  const negHalf = f32(-dstBinWidth / 2);
  const innerCube = f32(f32(f32(f32(half * half) * half) - f32(f32(negHalf * negHalf) * negHalf)) / 3);
  const norm = new Float32Array(bins);
  for (let i = 0; i < bins; i++) {
    const srcBegin = f32(f32(i - startBin) * bw);
    const srcEnd = f32(srcBegin + bw);
    const dstOfBegin = Math.min(Math.max(divFloor(srcBegin, dbw), 0), dstBins - 1);
    const dstOfBeginCenter = f32(f32(dstOfBegin + 0.5) * dbw);
    const dstOfEnd = Math.min(Math.max(divFloor(srcEnd, dbw), 0), dstBins - 1);
    const density = f32(hist[i]! / bw);
    let n = l2Norm(f32(srcBegin - dstOfBeginCenter), half, density);
    n = f32(n + f32(f32(f32(dstOfEnd - dstOfBegin) - 1) * f32(density * innerCube)));
    const dstOfEndCenter = f32(f32(dstOfEnd * dbw) + half);
    n = f32(n + l2Norm(negHalf, f32(srcEnd - dstOfEndCenter), density));
    norm[i] = n;
  }
  return torchSum(norm);
}

/**
 * HistogramObserver._non_linear_param_search: walks the quantile bounds
 * inward in steps of 1e-5, moving whichever end gains more bins, while the
 * L2 quantization error does not grow; returns the float32 min/max of the
 * bins it settled on.
 */
export function nonLinearParamSearch(hist: Float32Array, minVal: number, maxVal: number, dstBins: number): [number, number] {
  const bins = hist.length;
  const binWidth = f32(f32(maxVal - minVal) / bins);
  const total = torchSum(hist);
  const cSum = torchCumsum(hist);
  const stepsize = 1e-5;
  let alpha = 0;
  let beta = 1;
  let startBin = 0;
  let endBin = bins - 1;
  let normMin = Infinity;
  while (alpha < beta) {
    const nextAlpha = alpha + stepsize;
    const nextBeta = beta - stepsize;
    // A float32 tensor compared with a Python float compares in float32.
    const lowQ = f32(nextAlpha * total);
    const highQ = f32(nextBeta * total);
    let l = startBin;
    let r = endBin;
    while (l < endBin && cSum[l]! < lowQ) l++;
    while (r > startBin && cSum[r]! > highQ) r--;
    let nextStart = startBin;
    let nextEnd = endBin;
    if (l - startBin > endBin - r) {
      nextStart = l;
      alpha = nextAlpha;
    } else {
      nextEnd = r;
      beta = nextBeta;
    }
    if (nextStart === startBin && nextEnd === endBin) continue;
    const norm = quantizationError(hist, minVal, maxVal, nextStart, nextEnd, dstBins);
    if (norm > normMin) break;
    normMin = norm;
    startBin = nextStart;
    endBin = nextEnd;
  }
  return [f32(minVal + f32(binWidth * startBin)), f32(minVal + f32(binWidth * (endBin + 1)))];
}
