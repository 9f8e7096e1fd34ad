import { describe, expect, it } from 'vitest';
import { embeddingBackward, embeddingForward, linearBackward, linearForward } from '../../src/runtime/reference/index.js';
import { checkGrad, dot, expectClose, rand } from './helpers.js';

describe('linear', () => {
  it('computes x Wᵀ + b on a hand example, in both weight layouts', () => {
    const x = Float64Array.of(1, 2); // [1,2]
    const w = Float64Array.of(1, 0, 3, -1, 0.5, 2); // [3,2]
    const b = Float64Array.of(0.5, 0, -1);
    expectClose(linearForward(x, w, b, { M: 1, K: 2, N: 3 }), [1.5, 1, 3.5]);
    const wt = Float64Array.of(1, 3, 0.5, 0, -1, 2); // the same weight stored [2,3]
    expectClose(linearForward(x, wt, b, { M: 1, K: 2, N: 3, transposed: true }), [1.5, 1, 3.5]);
  });

  for (const transposed of [false, true]) {
    it(`backward equals central differences (M=3, K=5, N=7, transposed=${transposed})`, () => {
      const s = { M: 3, K: 5, N: 7, transposed };
      const x = rand(15);
      const w = rand(35);
      const b = rand(7);
      const r = rand(21);
      const loss = (): number => dot(linearForward(x, w, b, s), r);
      const g = linearBackward(x, w, r, s, { dx: true, dw: true, db: true });
      checkGrad('dx', x, g.dx, loss);
      checkGrad('dw', w, g.dw, loss);
      checkGrad('db', b, g.db, loss);
    });
  }

  it('computes only the gradients asked for', () => {
    const g = linearBackward(rand(6), rand(6), rand(4), { M: 2, K: 3, N: 2 }, { dx: true });
    expect(g.dx).toBeDefined();
    expect(g.dw).toBeUndefined();
    expect(g.db).toBeUndefined();
  });
});

describe('embedding', () => {
  it('looks rows up and scatter-adds repeated ids', () => {
    const table = Float64Array.of(0, 1, 10, 11, 20, 21); // [3,2]
    const ids = Int32Array.of(2, 0, 2);
    expectClose(embeddingForward(ids, table, 3, 2), [20, 21, 0, 1, 20, 21]);
    const d = embeddingBackward(ids, Float64Array.of(1, 2, 3, 4, 5, 6), 3, 2);
    expectClose(d, [3, 4, 0, 0, 6, 8]);
    expectClose(embeddingBackward(ids, Float64Array.of(1, 2, 3, 4, 5, 6), 3, 2, 2), [3, 4, 0, 0, 0, 0]);
  });

  it('backward equals central differences', () => {
    const V = 5;
    const D = 3;
    const ids = Int32Array.of(4, 1, 1, 0, 3, 4, 2);
    const table = rand(V * D);
    const r = rand(ids.length * D);
    checkGrad('dTable', table, embeddingBackward(ids, r, V, D), () => dot(embeddingForward(ids, table, V, D), r));
  });

  it('rejects out-of-range ids', () => {
    expect(() => embeddingForward(Int32Array.of(3), rand(6), 3, 2)).toThrow(/outside/);
  });
});
