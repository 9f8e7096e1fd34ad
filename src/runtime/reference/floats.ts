// Shared plumbing for the CPU reference ops. Every op is generic over Float32Array and
// Float64Array so that kernels are compared in f32 while gradient tests run in f64; outputs take
// the array type of the op's main input. Sums are accumulated in JS numbers (float64).

export type Floats = Float32Array | Float64Array;

/** A zeroed array of `n` elements with the same element type as `x`. */
export function like<T extends Floats>(x: T, n: number): T {
  return (x instanceof Float64Array ? new Float64Array(n) : new Float32Array(n)) as T;
}

/** A copy of `x` (same type). */
export function clone<T extends Floats>(x: T): T {
  return x.slice() as T;
}

/** Throws when `a` does not hold exactly `n` elements: shape mistakes are caller bugs. */
export function expectLength(what: string, a: ArrayLike<number>, n: number): void {
  if (a.length !== n) {
    throw new Error(`reference: ${what} has ${a.length} elements, expected ${n}`);
  }
}
