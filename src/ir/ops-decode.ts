/**
 * Ops of the one-token decode step (src/codegen/wgsl/decode/step-graph.ts derives that graph from
 * the forward graph): each attention op becomes a write of the new key and value into a cache of
 * earlier positions and one query's attention over the cache rows seen so far. The position comes
 * from an i32 tensor the runtime writes before each step, so one compiled step serves every
 * position. They exist only in inference graphs, so they need no gradient rule.
 */
import { defineOp, type OpDef } from "./opdef.js";
import { checkHeadsAndPrefix, f, first, rank } from "./ops-util.js";
import { dimEq, formatType, type Dim, type TensorType } from "./shape.js";

const one = (d: Dim): boolean => d === 1;

/** The step position: an i32 tensor holding one element. */
function posCheck(pos: TensorType): string | undefined {
  if (pos.dtype !== "i32") return `pos must be i32, got ${formatType(pos)}`;
  if (!pos.shape.every(one)) return `pos must hold one element, got ${formatType(pos)}`;
  return undefined;
}

export const DECODE_OPS: Readonly<Record<string, OpDef>> = {
  kv_cache_write: defineOp({
    doc: "cache [L,H,hd] with row pos replaced by x [1,1,H,hd] (one new key or value); runs in place on the device",
    inputs: ["cache", "x", "pos"],
    attrs: {},
    infer: ([cache, x, pos]) => {
      const bad = first(f(cache!, "cache"), f(x!, "x"), rank(cache!, 3, "cache"), rank(x!, 4, "x"), posCheck(pos!));
      if (bad) return bad;
      const [b, t, h, hd] = x!.shape as [Dim, Dim, Dim, Dim];
      if (!one(b) || !one(t)) return `x ${formatType(x!)} must be one position of one row: [1,1,H,hd]`;
      if (!dimEq(h, cache!.shape[1]!) || !dimEq(hd, cache!.shape[2]!)) return `x ${formatType(x!)} does not fit cache ${formatType(cache!)}`;
      return [{ dtype: cache!.dtype, shape: cache!.shape }];
    },
  }),

  attention_decode: defineOp({
    doc: "one query q [1,1,Hq,hd] attending over prefix_k/v [P,Hkv,hd] or [1,P,Hkv,hd] (if given) and cache rows 0..pos of k_cache/v_cache [L,Hkv,hd]; softmax(scale·q·kᵀ)·v per head, query head h reads kv head h/(Hq/Hkv)",
    inputs: ["q", "k_cache", "v_cache", "pos", "prefix_k?", "prefix_v?"],
    attrs: { scale: { kind: "float" } },
    infer: ([q, k, v, pos, pk, pv]) => {
      const bad = first(f(q!, "q"), f(k!, "k_cache"), f(v!, "v_cache"), rank(q!, 4, "q"), rank(k!, 3, "k_cache"), rank(v!, 3, "v_cache"), posCheck(pos!));
      if (bad) return bad;
      const [b, t, hq, hd] = q!.shape as [Dim, Dim, Dim, Dim];
      if (!one(b) || !one(t)) return `q ${formatType(q!)} must be one position of one row: [1,1,Hq,hd]`;
      const [L, hkv, hdk] = k!.shape as [Dim, Dim, Dim];
      if (!dimEq(hd, hdk)) return `k_cache ${formatType(k!)} does not fit q ${formatType(q!)}`;
      if (!dimEq(v!.shape[0]!, L) || !dimEq(v!.shape[1]!, hkv)) return `v_cache ${formatType(v!)} does not fit k_cache ${formatType(k!)}`;
      const pre = checkHeadsAndPrefix(hq, { k: [hkv, hdk], v: [v!.shape[1]!, v!.shape[2]!] }, pk, pv, { ok: one, name: "1" });
      if (pre) return pre;
      return [{ dtype: "f32", shape: [1, 1, hq, v!.shape[2]!] }];
    },
  }),
};
