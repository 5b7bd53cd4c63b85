import { KilnError } from './errors.js';

/**
 * Kiln's seeded generator (xoshiro128**). Random tensors are drawn on the
 * host and uploaded, so the same seed gives the same numbers on every
 * backend.
 */
export class Generator {
  private s = new Uint32Array(4);

  /** A generator seeded with `seed` (the same seed gives the same draws). */
  constructor(seed = 0x2545f491) {
    this.manualSeed(seed);
  }

  /** Re-seeds (splitmix32 expands the seed into the 128-bit state). */
  manualSeed(seed: number): this {
    let x = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.s[i] = (z ^ (z >>> 16)) >>> 0;
    }
    return this;
  }

  /** A copy of the 128-bit state (torch.Generator.get_state): setState() of it replays the same numbers. */
  getState(): Uint32Array {
    return this.s.slice();
  }

  /** Restores a state from getState() (torch.Generator.set_state). */
  setState(state: Uint32Array): this {
    if (state.length !== 4) throw new KilnError('Generator.setState', `expected a state of 4 uint32 words, got ${state.length}`);
    this.s.set(state);
    return this;
  }

  /** Next 32 random bits. */
  nextU32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1]!, 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1]! << 9) >>> 0;
    s[2]! ^= s[0]!;
    s[3]! ^= s[1]!;
    s[1]! ^= s[2]!;
    s[0]! ^= s[3]!;
    s[2]! ^= t;
    s[3] = rotl(s[3]!, 11);
    return result;
  }

  /** Uniform in [0, 1) with 24 random bits (exact in float32). */
  random(): number {
    return (this.nextU32() >>> 8) / 16777216;
  }

  /** Standard normal (Box-Muller). */
  normal(): number {
    const u1 = 1 - this.random();
    const u2 = this.random();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  /** Integer uniform in [low, high). */
  int(low: number, high: number): number {
    return low + Math.floor(this.random() * (high - low));
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** The default generator used by rand/randn/randint/dropout/init. */
export const defaultGenerator = new Generator();

/** Seeds the default generator (torch.manual_seed). */
export function manualSeed(seed: number): void {
  defaultGenerator.manualSeed(seed);
}

/** The default generator's state (torch.get_rng_state). */
export function getRngState(): Uint32Array {
  return defaultGenerator.getState();
}

/** Restores the default generator's state (torch.set_rng_state). */
export function setRngState(state: Uint32Array): void {
  defaultGenerator.setState(state);
}
