/** Lowerings of the attention family (see types.ts for the contract). */
import { attentionBackwardKernels, attentionForwardKernel, type AttentionShape } from "../kernels/attention/index.js";
import { registerLowerings } from "./registry.js";
import type { LowerContext, Lowering } from "./types.js";

/** Sizes from q [B,T,Hq,hd], k [B,S,Hkv,hd] and the prefix at input `prefixAt`, if given. */
function shapeOf(ctx: LowerContext, prefixAt: number): AttentionShape {
  for (const t of ctx.inputs) if (t.dtype !== "f32") throw new Error(`${ctx.op.op}: operands must be f32, got ${t.dtype}`);
  const [B, T, Hq, hd] = ctx.inputs[0]!.shape as [number, number, number, number];
  const [, S, Hkv] = ctx.inputs[1]!.shape as [number, number, number];
  const pk = ctx.inputs[prefixAt];
  return {
    B,
    T,
    S,
    Hq,
    Hkv,
    hd,
    P: pk ? pk.shape[pk.shape.length - 3]! : 0,
    prefixBatched: pk?.shape.length === 4,
    causal: ctx.attrs["causal"] === true,
    scale: ctx.attrs["scale"] as number,
  };
}

const attention: Lowering = (ctx) => ({ kernels: [attentionForwardKernel(shapeOf(ctx, 3), ctx.caps)] });

const attentionBackward: Lowering = (ctx) => {
  const { kernels, scratchBytes } = attentionBackwardKernels(shapeOf(ctx, 5), ctx.caps);
  return { kernels, scratch: scratchBytes };
};

registerLowerings({ attention, attention_backward: attentionBackward });
