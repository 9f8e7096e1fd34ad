import { describe, it } from 'vitest';
import { elementwiseForward, swigluBackward, swigluForward } from '../../src/runtime/reference/index.js';
import { checkGrad, dot, expectClose, rand } from './helpers.js';

describe('swiglu', () => {
  it('is silu(first half) times the second half', () => {
    // rows: [g0 g1 | u0 u1]
    const x = Float64Array.of(0, 1, 5, 2);
    const s1 = 1 / (1 + Math.exp(-1));
    expectClose(swigluForward(x, 1, 2), [0, 2 * s1]);
  });

  it('agrees with elementwise silu and mul on split halves', () => {
    const M = 3;
    const F = 5;
    const x = rand(M * 2 * F, -4, 4);
    const gate = new Float64Array(M * F);
    const up = new Float64Array(M * F);
    for (let m = 0; m < M; m++) {
      gate.set(x.subarray(m * 2 * F, m * 2 * F + F), m * F);
      up.set(x.subarray(m * 2 * F + F, (m + 1) * 2 * F), m * F);
    }
    expectClose(swigluForward(x, M, F), elementwiseForward('mul', elementwiseForward('silu', gate), up));
  });

  it('backward equals central differences (M=3, F=5)', () => {
    const x = rand(30, -4, 4);
    const r = rand(15);
    checkGrad('dx', x, swigluBackward(x, r, 3, 5), () => dot(swigluForward(x, 3, 5), r));
  });
});
