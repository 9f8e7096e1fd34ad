/**
 * Lowerings of the decode-step ops (see types.ts for the contract). The cache write's output is
 * the cache itself: an alias of input 0 that its kernel writes in place, so the cache buffer is the
 * graph input's own and persists from step to step. The one-query attention asks for a scratch row
 * of scores per query head.
 */
import { cacheWriteKernel, decodeAttentionKernel, decodeAttentionScratch } from "../kernels/decode/index.js";
import { registerLowerings } from "./registry.js";
import type { Lowering } from "./types.js";

const kvCacheWrite: Lowering = (ctx) => {
  for (const t of ctx.inputs.slice(0, 2)) if (t.dtype !== "f32") throw new Error(`kv_cache_write: operands must be f32, got ${t.dtype}`);
  const [L, H, hd] = ctx.inputs[0]!.shape as [number, number, number];
  return { kernels: [cacheWriteKernel({ L, H, hd }, ctx.caps)], aliases: [{ out: 0, input: 0, offsetBytes: 0 }] };
};

const attentionDecode: Lowering = (ctx) => {
  for (const t of [...ctx.inputs.slice(0, 3), ...ctx.inputs.slice(4)]) if (t.dtype !== "f32") throw new Error(`attention_decode: operands must be f32, got ${t.dtype}`);
  const [, , Hq, hd] = ctx.inputs[0]!.shape as [number, number, number, number];
  const [L, Hkv] = ctx.inputs[1]!.shape as [number, number];
  const pk = ctx.inputs[4];
  const s = { Hq, Hkv, hd, L, P: pk ? pk.shape[pk.shape.length - 3]! : 0, scale: ctx.attrs["scale"] as number };
  return { kernels: [decodeAttentionKernel(s, ctx.caps)], scratch: [decodeAttentionScratch(s)] };
};

registerLowerings({ kv_cache_write: kvCacheWrite, attention_decode: attentionDecode });
