/**
 * Small checks shared by the op tables' shape rules.
 */
import { defineOp, type OpDef } from "./opdef.js";
import { broadcastShapes, formatType, isFloat, promote, type Dim, type Shape, type TensorType } from "./shape.js";

export const f = (t: TensorType, what: string): string | undefined =>
  isFloat(t.dtype) ? undefined : `${what} must be f32 or f16, got ${formatType(t)}`;

export const rank = (t: TensorType, n: number, what: string): string | undefined =>
  t.shape.length === n ? undefined : `${what} must have rank ${n}, got ${formatType(t)}`;

export const last = (s: Shape): Dim => s[s.length - 1] as Dim;

/** Resolves a possibly negative axis; undefined when out of range. */
export function axisOf(axis: number, r: number): number | undefined {
  const a = axis < 0 ? axis + r : axis;
  return a >= 0 && a < r ? a : undefined;
}

export function first(...checks: (string | undefined)[]): string | undefined {
  return checks.find((c) => c !== undefined);
}

export const unary = (doc: string): OpDef =>
  defineOp({
    doc,
    inputs: ["x"],
    attrs: {},
    infer: ([x]) => f(x!, "x") ?? [{ dtype: x!.dtype, shape: x!.shape }],
  });

export const elementwise = (doc: string): OpDef =>
  defineOp({
    doc,
    inputs: ["a", "b"],
    attrs: {},
    infer: ([a, b]) => {
      const bad = f(a!, "a") ?? f(b!, "b");
      if (bad) return bad;
      const shape = broadcastShapes(a!.shape, b!.shape);
      return typeof shape === "string" ? shape : [{ dtype: promote(a!.dtype, b!.dtype), shape }];
    },
  });

