/**
 * Forward ops that only method injection needs, kept apart so the base table stays the model's.
 * `gelu` is AdapterHub's adapter activation (the exact erf form, not GPT-2's tanh approximation);
 * `rank_scale` is AdaLoRA's scaling, which PEFT computes from a frozen `ranknum` parameter at run
 * time, so the graph reads that parameter instead of folding it into a constant.
 */
import { defineOp, type OpDef } from "./opdef.js";
import { f, first, rank, unary } from "./ops-util.js";
import { formatType } from "./shape.js";

export const PEFT_OPS: Readonly<Record<string, OpDef>> = {
  gelu: unary("0.5·x·(1 + erf(x/√2)) (exact GELU, AdapterHub's \"gelu\")"),

  rank_scale: defineOp({
    doc: "x · factor / (ranknum + eps) with ranknum a [1] tensor (AdaLoRA: lora_alpha / (ranknum + 1e-5)); no gradient toward ranknum",
    inputs: ["x", "ranknum"],
    attrs: { factor: { kind: "float" }, eps: { kind: "float" } },
    infer: ([x, n]) => {
      const bad = first(f(x!, "x"), f(n!, "ranknum"), rank(n!, 1, "ranknum"));
      if (bad) return bad;
      if (n!.shape[0] !== 1) return `ranknum ${formatType(n!)} must be [1]`;
      return [{ dtype: x!.dtype, shape: x!.shape }];
    },
  }),
};
