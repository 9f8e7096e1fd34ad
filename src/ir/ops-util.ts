/**
 * Small checks shared by the op tables' shape rules.
 */
import { defineOp, type OpDef } from "./opdef.js";
import { broadcastShapes, dimEq, formatType, isFloat, promote, type Dim, type Shape, type TensorType } from "./shape.js";

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


/**
 * Attention's checks shared by the training and decode forms: Hq query heads grouped over Hkv
 * key/value heads, and the optional prefix keys/values, each [P,heads,dim] of its k or v
 * ([heads, dim] in `k` and `v`) or [batch,P,heads,dim] with the batch dimension accepted by
 * `batch.ok` (spelled `batch.name` in the message), both of one length.
 */
export function checkHeadsAndPrefix(
  hq: Dim,
  kv: { k: [Dim, Dim]; v: [Dim, Dim] },
  pk: TensorType | undefined,
  pv: TensorType | undefined,
  batch: { ok: (d: Dim) => boolean; name: string },
): string | undefined {
  const hkv = kv.k[0];
  if (typeof hq === "number" && typeof hkv === "number" && (hkv === 0 || hq % hkv !== 0)) return `${hq} query heads cannot be grouped over ${hkv} key/value heads`;
  if (pk && !pv) return "prefix_k needs prefix_v";
  for (const [p, [heads, hd], what] of [[pk, kv.k, "prefix_k"], [pv, kv.v, "prefix_v"]] as const) {
    if (!p) continue;
    const pb = f(p, what);
    if (pb) return pb;
    const tail = p.shape.slice(-2);
    const okRank = p.shape.length === 3 || (p.shape.length === 4 && batch.ok(p.shape[0]!));
    if (!okRank || !dimEq(tail[0]!, heads) || !dimEq(tail[1]!, hd))
      return `${what} ${formatType(p)} must be [P,${String(heads)},${String(hd)}] or [${batch.name},P,${String(heads)},${String(hd)}]`;
  }
  if (pk && pv && !dimEq(pk.shape[pk.shape.length - 3]!, pv.shape[pv.shape.length - 3]!))
    return `prefix_k ${formatType(pk)} and prefix_v ${formatType(pv)} differ in length`;
  return undefined;
}
