// Seeded permutations for shuffling and for holding out eval records. Deterministic across
// machines and runs, so a resumed run sees exactly the batches it would have seen.
//
// The generator is the project's counter-based one (runtime/reference/rng.ts): the random u32
// number k of a use is randomBits(key, k). A permutation of n items is a Fisher-Yates shuffle of
// 0..n-1: for i = n-1 down to 1, with r = randomBits(key, n-1-i), swap items i and
// j = floor(r * (i+1) / 2^32). (Multiply-shift instead of rejection: the bias is below n / 2^32,
// and the arithmetic is exact in doubles for n < 2^21.)
//   shuffle of epoch e:  key = streamKey(seed ^ 0x64617461, e)         ("data")
//   holdout selection:   key = streamKey(seed ^ 0x686f6c64, 0)         ("hold")

import { randomBits, streamKey } from "../reference/rng.js";

const SHUFFLE_TAG = 0x64617461;
const HOLDOUT_TAG = 0x686f6c64;

export function permutation(n: number, key: number): Uint32Array {
  const p = new Uint32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i >= 1; i--) {
    const r = randomBits(key, n - 1 - i);
    const j = Math.floor((r * (i + 1)) / 4294967296);
    const t = p[i]!;
    p[i] = p[j]!;
    p[j] = t;
  }
  return p;
}

/** The order of `n` examples in `epoch`: a fresh permutation per epoch, the same for the same seed. */
export function epochOrder(n: number, seed: number, epoch: number): Uint32Array {
  return permutation(n, streamKey((seed ^ SHUFFLE_TAG) >>> 0, epoch));
}

export function holdoutKey(seed: number): number {
  return streamKey((seed ^ HOLDOUT_TAG) >>> 0, 0);
}
