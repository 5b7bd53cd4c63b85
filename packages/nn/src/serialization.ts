// State dicts to and from safetensors, on top of core's byte-level codec
// (readSafetensors / writeSafetensors): this file only moves tensors
// between the device and host arrays.
import { FormatError, bitsToFloat32, encodeHalf, fromArray, readSafetensors, writeSafetensors, widenToKiln, type RawTensor, type Tensor } from '@kiln/core';
import type { StateDict } from './state-dict.js';

/** Thrown for a malformed safetensors file (core's FormatError). */
export const SafetensorsError = FormatError;

/** Options of {@link saveSafetensors}. */
export interface SaveSafetensorsOptions {
  /** String metadata stored under `__metadata__`. */
  metadata?: Record<string, string>;
}

/**
 * Encodes a state dict as safetensors bytes (awaits each tensor's readback).
 * Tensors are laid out as the reference writer does; int32 tensors are I32.
 */
export async function saveSafetensors(stateDict: StateDict | Map<string, Tensor>, opts: SaveSafetensorsOptions = {}): Promise<Uint8Array> {
  const entries = stateDict instanceof Map ? [...stateDict] : Object.entries(stateDict);
  const raw = new Map<string, RawTensor>();
  for (const [name, t] of entries) {
    // A float16 tensor reads back as its float32 values; the file holds its bit patterns.
    const data = t.dtype === 'float16' ? encodeHalf(await t.toArray()) : await t.toArray();
    raw.set(name, { dtype: t.dtype, shape: [...t.shape], data });
  }
  return writeSafetensors(raw, opts.metadata);
}

/**
 * Decodes safetensors bytes into a state dict of tensors on `device`
 * (default backend when omitted), ready for Module.loadStateDict. F16/BF16/F64
 * become float32 and I64/I16 int32 (see core's widenToKiln); with
 * `float16: 'keep'`, F16 tensors stay float16 (as torch's safetensors load).
 */
export function loadSafetensors(bytes: Uint8Array, opts: { device?: string; float16?: 'float32' | 'keep' } = {}): StateDict {
  const out: StateDict = {};
  for (const [name, t] of readSafetensors(bytes, { keepDtype: true }).tensors) {
    const k = widenToKiln(t, 'loadSafetensors', name, { float16: opts.float16 });
    // float16 data are bit patterns; their values are exact in float32 and encode back to the same bits.
    const values = k.dtype === 'float16' ? bitsToFloat32('float16', k.data as Uint16Array) : (k.data as ArrayLike<number>);
    out[name] = fromArray(values, k.shape, { dtype: k.dtype, device: opts.device });
  }
  return out;
}
