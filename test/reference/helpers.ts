// Shared test tools: seeded random inputs and a central-difference gradient check in float64.

import { expect } from 'vitest';
import { uniformFill, type Floats } from '../../src/runtime/reference/index.js';

let stream = 1;

/** A fresh float64 array of uniform values in [lo, hi), different on every call, same on every run. */
export function rand(n: number, lo = -1, hi = 1): Float64Array {
  return uniformFill(new Float64Array(n), 1234, stream++, lo, hi);
}

export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/**
 * Compares `analytic` with the central difference of `loss` over every element of `x`
 * (perturbed in place and restored), with abs + rel tolerance; reports the worst element.
 */
export function checkGrad(
  name: string,
  x: Float64Array,
  analytic: Floats | undefined,
  loss: () => number,
  h = 1e-6,
  tol = 1e-6,
): void {
  expect(analytic, `${name}: no analytic gradient`).toBeDefined();
  const an = analytic!;
  expect(an.length, `${name} length`).toBe(x.length);
  let worst = 0;
  let worstAt = -1;
  let largest = 0;
  for (let i = 0; i < x.length; i++) {
    const xi = x[i]!;
    x[i] = xi + h;
    const lp = loss();
    x[i] = xi - h;
    const lm = loss();
    x[i] = xi;
    const num = (lp - lm) / (2 * h);
    largest = Math.max(largest, Math.abs(num));
    const err = Math.abs(num - an[i]!) / (1 + Math.abs(num));
    if (err > worst) {
      worst = err;
      worstAt = i;
    }
  }
  // A gradient that is zero everywhere would let a wrong rule pass unnoticed.
  expect(largest, `${name}: the loss does not depend on this input`).toBeGreaterThan(1e-8);
  expect(worst, `${name}: worst relative error at element ${worstAt}`).toBeLessThan(tol);
}

export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-12): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    expect(Math.abs(a - e), `element ${i}: ${a} vs ${e}`).toBeLessThanOrEqual(tol * (1 + Math.abs(e)));
  }
}
