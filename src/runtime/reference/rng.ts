// Counter-based random numbers: every value is a pure function of (seed, stream, index), so a
// WGSL kernel can regenerate a dropout mask element by element without storing it, and the CPU
// reference reproduces it bit for bit. Only 32-bit wrapping multiply, xor and shifts are used,
// which WGSL's u32 arithmetic has natively.
//
// The exact definition (all arithmetic on u32, wrapping):
//   mix32(x):  x ^= x >> 16; x *= 0x21f0aaad; x ^= x >> 15; x *= 0x735a2d97; x ^= x >> 15
//   key(seed, stream) = mix32(seed ^ mix32(stream + 0x9e3779b9))
//   bits(key, i)      = mix32(mix32(i ^ key) + key)
//   uniform(bits)     = (bits >> 8) * 2^-24            in [0, 1), exact in f32
// A dropout element i is dropped iff (bits(key, i) >> 8) < dropThreshold(p), with
// dropThreshold(p) = round(p * 2^24); the threshold is what a kernel receives, so the CPU and GPU
// agree without comparing floats.

import type { Floats } from './floats.js';

const GOLDEN = 0x9e3779b9;
export const UNIFORM_BITS = 24;
const UNIFORM_SCALE = 1 / 16777216;

/** The 32-bit finaliser used by every other function here. */
export function mix32(x: number): number {
  x >>>= 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x21f0aaad);
  x ^= x >>> 15;
  x = Math.imul(x, 0x735a2d97);
  x ^= x >>> 15;
  return x >>> 0;
}

/** Per-(seed, stream) key; a stream separates independent uses of one seed (call site, step). */
export function streamKey(seed: number, stream: number): number {
  return mix32((seed >>> 0) ^ mix32((stream + GOLDEN) >>> 0));
}

/** The random u32 at counter `index` for `key`. */
export function randomBits(key: number, index: number): number {
  return mix32((mix32((index ^ key) >>> 0) + key) >>> 0);
}

/** A uniform number in [0, 1) with 24 random bits. */
export function uniformAt(key: number, index: number): number {
  return (randomBits(key, index) >>> 8) * UNIFORM_SCALE;
}

/** The integer threshold compared against the top 24 random bits; see the header. */
export function dropThreshold(p: number): number {
  if (!(p >= 0 && p <= 1)) throw new Error(`reference: dropout probability ${p} outside [0, 1]`);
  return Math.round(p * 16777216);
}

/** True when element `index` is kept under dropout with threshold `threshold`. */
export function keepAt(key: number, index: number, threshold: number): boolean {
  return randomBits(key, index) >>> 8 >= threshold;
}

/** Fills `out` with uniform values in [lo, hi) drawn at counters 0..n-1 (initialisation, tests). */
export function uniformFill<T extends Floats>(out: T, seed: number, stream: number, lo = 0, hi = 1): T {
  const key = streamKey(seed, stream);
  for (let i = 0; i < out.length; i++) out[i] = lo + (hi - lo) * uniformAt(key, i);
  return out;
}
