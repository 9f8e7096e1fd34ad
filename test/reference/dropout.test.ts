import { describe, expect, it } from 'vitest';
import {
  dropoutBackward,
  dropoutForward,
  dropoutMask,
  dropThreshold,
  mix32,
  randomBits,
  streamKey,
  uniformAt,
} from '../../src/runtime/reference/index.js';
import { checkGrad, dot, rand } from './helpers.js';

// The documented hash, written again with BigInt arithmetic as an independent implementation.
const M32 = 0xffffffffn;
function mix32Big(x: bigint): bigint {
  x &= M32;
  x ^= x >> 16n;
  x = (x * 0x21f0aaadn) & M32;
  x ^= x >> 15n;
  x = (x * 0x735a2d97n) & M32;
  x ^= x >> 15n;
  return x;
}
function bitsBig(seed: number, stream: number, i: number): bigint {
  const key = mix32Big(BigInt(seed) ^ mix32Big((BigInt(stream) + 0x9e3779b9n) & M32));
  return mix32Big((mix32Big(BigInt(i) ^ key) + key) & M32);
}

describe('counter-based rng', () => {
  it('matches the documented formula computed independently with BigInt', () => {
    for (const [seed, stream] of [
      [0, 0],
      [42, 7],
      [0xffffffff, 123456],
    ] as const) {
      const key = streamKey(seed, stream);
      for (const i of [0, 1, 2, 1000, 0x7fffffff, 0xfffffffe]) {
        expect(BigInt(randomBits(key, i))).toBe(bitsBig(seed, stream, i));
      }
    }
    expect(BigInt(mix32(0xdeadbeef))).toBe(mix32Big(0xdeadbeefn));
  });

  it('produces roughly uniform values in [0, 1)', () => {
    const key = streamKey(9, 1);
    const n = 50000;
    const buckets = new Array<number>(10).fill(0);
    let sum = 0;
    let outside = 0;
    for (let i = 0; i < n; i++) {
      const u = uniformAt(key, i);
      if (!(u >= 0 && u < 1)) outside++;
      sum += u;
      buckets[Math.floor(u * 10)]!++;
    }
    expect(outside).toBe(0);
    expect(Math.abs(sum / n - 0.5)).toBeLessThan(0.01);
    // chi-square with 9 degrees of freedom; 27.9 is the 0.1 % tail.
    const chi = buckets.reduce((c, b) => c + (b - n / 10) ** 2 / (n / 10), 0);
    expect(chi).toBeLessThan(27.9);
  });
});

describe('dropout', () => {
  it('is reproducible from (seed, stream) and differs across streams', () => {
    const a = dropoutMask(1000, { p: 0.3, seed: 5, stream: 2 });
    const b = dropoutMask(1000, { p: 0.3, seed: 5, stream: 2 });
    const c = dropoutMask(1000, { p: 0.3, seed: 5, stream: 3 });
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
  });

  it('drops about p of the elements and scales the rest by 1/(1−p)', () => {
    const n = 40000;
    const p = 0.2;
    const x = new Float64Array(n).fill(1);
    const y = dropoutForward(x, { p, seed: 11, stream: 0 });
    let dropped = 0;
    let wrongScale = 0;
    for (let i = 0; i < n; i++) {
      if (y[i] === 0) dropped++;
      else if (Math.abs(y[i]! - 1.25) > 1e-15) wrongScale++;
    }
    expect(wrongScale).toBe(0);
    // Binomial standard deviation is sqrt(n p (1 − p)) = 80; allow 5 of them.
    expect(Math.abs(dropped - p * n)).toBeLessThan(400);
  });

  it('uses the integer threshold round(p · 2^24)', () => {
    expect(dropThreshold(0)).toBe(0);
    expect(dropThreshold(0.5)).toBe(8388608);
    expect(dropThreshold(1)).toBe(16777216);
    expect(() => dropThreshold(1.5)).toThrow();
  });

  it('p = 0 is the identity and p = 1 drops everything', () => {
    const x = rand(17);
    expect(dropoutForward(x, { p: 0, seed: 1, stream: 1 })).toEqual(x);
    expect([...dropoutForward(x, { p: 1, seed: 1, stream: 1 })].every((v) => v === 0)).toBe(true);
  });

  it('backward applies the same mask and equals central differences', () => {
    const spec = { p: 0.4, seed: 3, stream: 9 };
    const x = rand(64);
    const r = rand(64);
    checkGrad('dx', x, dropoutBackward(r, spec), () => dot(dropoutForward(x, spec), r));
  });
});
