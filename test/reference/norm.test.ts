import { describe, it } from 'vitest';
import { layernormBackward, layernormForward, rmsnormBackward, rmsnormForward } from '../../src/runtime/reference/index.js';
import { checkGrad, dot, expectClose, rand } from './helpers.js';

describe('rmsnorm', () => {
  it('matches a hand example: x = [3, 4], w = [1, 2], eps = 0', () => {
    // mean(x²) = 12.5, so x̂ = x / sqrt(12.5)
    const { y, rstd } = rmsnormForward(Float64Array.of(3, 4), Float64Array.of(1, 2), 1, 2, 0);
    const r = 1 / Math.sqrt(12.5);
    expectClose(rstd, [r]);
    expectClose(y, [3 * r, 8 * r]);
  });

  it('backward equals central differences (M=3, D=7)', () => {
    const M = 3;
    const D = 7;
    const x = rand(M * D);
    const w = rand(D);
    const r = rand(M * D);
    const eps = 1e-5;
    const f = rmsnormForward(x, w, M, D, eps);
    const g = rmsnormBackward(x, w, f.rstd, r, M, D, { dx: true, dw: true });
    const loss = (): number => dot(rmsnormForward(x, w, M, D, eps).y, r);
    checkGrad('dx', x, g.dx, loss);
    checkGrad('dw', w, g.dw, loss);
  });
});

describe('layernorm', () => {
  it('matches a hand example: x = [1, 3], biased variance 1', () => {
    const eps = 1e-5;
    const { y, mean, rstd } = layernormForward(Float64Array.of(1, 3), Float64Array.of(2, 3), Float64Array.of(0.5, -1), 1, 2, eps);
    const r = 1 / Math.sqrt(1 + eps);
    expectClose(mean, [2]);
    expectClose(rstd, [r]);
    expectClose(y, [-2 * r + 0.5, 3 * r - 1]);
  });

  it('backward equals central differences (M=3, D=5)', () => {
    const M = 3;
    const D = 5;
    const x = rand(M * D);
    const w = rand(D);
    const b = rand(D);
    const r = rand(M * D);
    const eps = 1e-5;
    const f = layernormForward(x, w, b, M, D, eps);
    const g = layernormBackward(x, w, f.mean, f.rstd, r, M, D, { dx: true, dw: true, db: true });
    const loss = (): number => dot(layernormForward(x, w, b, M, D, eps).y, r);
    checkGrad('dx', x, g.dx, loss);
    checkGrad('dw', w, g.dw, loss);
    checkGrad('db', b, g.db, loss);
  });
});
