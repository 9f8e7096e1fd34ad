/**
 * Pass inject-adalora (peft-methods.md §2.2-2.3): every targeted linear module gets PEFT's SVDLinear
 *
 *   y' = y + linear(linear(dropout(x), A ⊙ E), B) · alpha / (ranknum + 1e-5)
 *
 *   <module>.lora_A   [init_r, in]  N(0, 0.02)     (raw parameters: no `.weight`, as PEFT names them)
 *   <module>.lora_E   [init_r, 1]   zeros          (the singular values the rank allocator masks)
 *   <module>.lora_B   [out, init_r] N(0, 0.02)
 *   <module>.ranknum  [1]           init_r, frozen (PEFT counts it among all parameters, never saves it)
 *
 * The matrices are built at init_r; `r` is the average rank the allocator prunes toward during
 * training, which changes values in E, never shapes. The graph reads ranknum through rank_scale
 * rather than folding alpha/init_r into a constant, so the parameter is real and the scale is
 * PEFT's to the last bit. AdaLoRA has no gated form (UniPELT gates LoRA, adapters and prefixes).
 */
import { diag } from "../diagnostics/index.js";
import type { Graph } from "../ir/index.js";
import type { PassContext } from "./context.js";
import { BERT_INIT, Injector, linearOp, methodsOf } from "./inject/common.js";

export function injectAdalora(graph: Graph, ctx: PassContext): Graph {
  const found = methodsOf(ctx, "adalora");
  if (found.length === 0) return graph;
  const inj = new Injector(graph);
  const { b } = inj;
  for (const { m, i } of found) {
    if (m.gated) {
      ctx.diagnostics.push(diag("P316", ctx.file, m.span, ["a gate on adalora", "gates exist for lora, adapters, prefix and p_tuning_v2; use lora in a gated hybrid"]));
      continue;
    }
    const owner = { origin: "adalora", method: i };
    const { init_r: r, alpha, dropout } = m.options;
    for (const { module } of ctx.targets[i]?.modules ?? []) {
      const path = module.path;
      const base = linearOp(b, module);
      const x = base.inputs[0]!;
      const y = base.outputs[0]!.name;
      const A = inj.param(`${path}.lora_A`, [r, module.inFeatures], BERT_INIT, owner);
      const E = inj.param(`${path}.lora_E`, [r, 1], { kind: "zeros" }, owner);
      const B = inj.param(`${path}.lora_B`, [module.outFeatures, r], BERT_INIT, owner);
      const n = inj.param(`${path}.ranknum`, [1], { kind: "constant", value: r }, { ...owner, trainable: false });
      b.after(y);
      const ae = b.op("mul", path, [A, E], {}, b.fresh(`${path}.lora_AE`));
      const xin = dropout > 0 ? b.op("dropout", path, [x], { p: dropout, stream: `${path}.lora_dropout` }, b.fresh(`${path}.lora_dropout.out`)) : x;
      const down = b.op("linear", path, [xin, ae], {}, b.fresh(`${path}.lora_A.out`));
      const up = b.op("linear", path, [down, B], {}, b.fresh(`${path}.lora_B.out`));
      const scaled = b.op("rank_scale", path, [up, n], { factor: alpha, eps: 1e-5 }, b.fresh(`${path}.lora_scaled`));
      const sum = b.op("add", path, [y, scaled], {}, b.fresh(`${path}.lora_out`));
      b.replaceUses(y, sum);
    }
  }
  return inj.finish();
}
