import { describe, expect, it } from 'vitest';
import { ropeBackward, ropeForward, type RopeSpec } from '../../src/runtime/reference/index.js';
import { checkGrad, dot, expectClose, rand } from './helpers.js';

const one = (hd: number, i: number): Float64Array => {
  const x = new Float64Array(hd);
  x[i] = 1;
  return x;
};

describe('rope', () => {
  it('half mode rotates pairs (i, i + hd/2) by pos · theta^(−2i/hd)', () => {
    const s: RopeSpec = { B: 1, T: 1, H: 1, hd: 4, mode: 'half', theta: 10000 };
    const pos = Int32Array.of(3);
    // pair 0 = channels (0, 2), frequency 1
    expectClose(ropeForward(one(4, 0), pos, s), [Math.cos(3), 0, Math.sin(3), 0]);
    // pair 1 = channels (1, 3), frequency 10000^(−1/2) = 0.01
    expectClose(ropeForward(one(4, 3), pos, s), [0, -Math.sin(0.03), 0, Math.cos(0.03)]);
  });

  it('interleaved mode (chatglm2) rotates (2i, 2i+1) and passes channels past rotaryDim through', () => {
    const s: RopeSpec = { B: 1, T: 1, H: 1, hd: 8, mode: 'interleaved', rotaryDim: 4, theta: 10000 };
    const pos = Int32Array.of(2);
    expectClose(ropeForward(one(8, 0), pos, s), [Math.cos(2), Math.sin(2), 0, 0, 0, 0, 0, 0]);
    // pair 1 = channels (2, 3), frequency 10000^(−2/4) = 0.01
    expectClose(ropeForward(one(8, 3), pos, s), [0, 0, -Math.sin(0.02), Math.cos(0.02), 0, 0, 0, 0]);
    const x = rand(8);
    const y = ropeForward(x, pos, s);
    expectClose(y.subarray(4), x.subarray(4));
  });

  it('position 0 is the identity and per-batch positions are honoured', () => {
    const s: RopeSpec = { B: 2, T: 2, H: 3, hd: 6, mode: 'half', theta: 500 };
    const x = rand(2 * 2 * 3 * 6);
    const y = ropeForward(x, Int32Array.of(0, 0, 0, 0), s);
    expectClose(y, x);
    // Batch 1 at positions (5, 6) equals a shared-position call at (5, 6) on that batch.
    const perBatch = ropeForward(x, Int32Array.of(0, 1, 5, 6), s);
    const shared = ropeForward(x, Int32Array.of(5, 6), s);
    expectClose(perBatch.subarray(36), shared.subarray(36));
  });

  for (const mode of ['half', 'interleaved'] as const) {
    it(`${mode}: backward equals central differences and undoes the forward`, () => {
      const s: RopeSpec = { B: 2, T: 3, H: 2, hd: 6, mode, rotaryDim: 4, theta: 10000 };
      const pos = Int32Array.of(0, 4, 9);
      const x = rand(2 * 3 * 2 * 6);
      const r = rand(x.length);
      checkGrad('dx', x, ropeBackward(r, pos, s), () => dot(ropeForward(x, pos, s), r));
      expectClose(ropeBackward(ropeForward(x, pos, s), pos, s), x, 1e-14);
    });
  }

  it('rejects an odd rotary dimension', () => {
    expect(() => ropeForward(rand(6), Int32Array.of(0), { B: 1, T: 1, H: 1, hd: 6, mode: 'half', rotaryDim: 3, theta: 1e4 })).toThrow();
  });
});
