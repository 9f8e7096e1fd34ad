/**
 * Pass inject-lora (peft-methods.md §1): every targeted linear module gets
 *
 *   y' = y + s · linear(linear(dropout(x), A), B)      A = <module>.lora_A.weight [r,in]
 *                                                      B = <module>.lora_B.weight [out,r]
 *
 * with s = alpha/r (alpha/√r with rslora), r/alpha/dropout per module after the override blocks
 * (later blocks win, like PEFT's rank_pattern/alpha_pattern). A starts kaiming-uniform(a=√5) =
 * U(±1/√in) (N(0, 1/r) with init=gaussian), B at zero, so the model is unchanged at step 0. Dropout
 * is an op only when p > 0, with the module path as its random stream. A and B keep torch's
 * [out,in] layout on GPT-2's Conv1D too (only a merge would transpose), and a fused projection
 * (query_key_value, c_attn) is adapted as one module, as PEFT does.
 *
 * Gated (a UniPELT member): the branch is multiplied by the gate of §11 instead of s; the gate
 * Linear(in, 1) reads the module's input x (before dropout): <module>.lora_gate.{weight [1,in], bias [1]},
 * weight N(0, 0.02), bias torch's default U(±1/√in).
 */
import type { Graph } from "../ir/index.js";
import type { PassContext } from "./context.js";
import { BERT_INIT, Injector, linearOp, methodsOf, torchLinearInit } from "./inject/common.js";
import { addGate } from "./inject/gate.js";

export function injectLora(graph: Graph, ctx: PassContext): Graph {
  const found = methodsOf(ctx, "lora");
  if (found.length === 0) return graph;
  const inj = new Injector(graph);
  const { b } = inj;
  for (const { m, i } of found) {
    const owner = { origin: "lora", method: i };
    const target = ctx.targets[i];
    if (!target) continue;
    for (const { module } of target.modules) {
      let { r, alpha, dropout } = m.options;
      for (const o of target.overrides) {
        if (!o.modules.includes(module.path)) continue;
        r = o.options["r"] ?? r;
        alpha = o.options["alpha"] ?? alpha;
        dropout = o.options["dropout"] ?? dropout;
      }
      const path = module.path;
      const base = linearOp(b, module);
      const x = base.inputs[0]!;
      const y = base.outputs[0]!.name;
      const A = inj.param(`${path}.lora_A.weight`, [r, module.inFeatures], m.options.init === "gaussian" ? { kind: "normal", mean: 0, std: 1 / r } : torchLinearInit(module.inFeatures), owner);
      const B = inj.param(`${path}.lora_B.weight`, [module.outFeatures, r], { kind: "zeros" }, owner);
      b.after(y);
      const xin = dropout > 0 ? b.op("dropout", path, [x], { p: dropout, stream: `${path}.lora_dropout` }, b.fresh(`${path}.lora_dropout.out`)) : x;
      const down = b.op("linear", path, [xin, A], {}, b.fresh(`${path}.lora_A.out`));
      const up = b.op("linear", path, [down, B], {}, b.fresh(`${path}.lora_B.out`));
      let branch: string;
      if (m.gated) {
        const g = addGate(inj, {
          module: path, name: `${path}.lora_gate`, input: x, targetRank: b.typeOf(up).shape.length,
          weightInit: BERT_INIT, biasInit: torchLinearInit(module.inFeatures), owner,
        });
        branch = b.op("mul", path, [up, g], {}, b.fresh(`${path}.lora_gated`));
      } else {
        const s = m.options.rslora ? alpha / Math.sqrt(r) : alpha / r;
        branch = b.op("scale", path, [up], { factor: s }, b.fresh(`${path}.lora_scaled`));
      }
      const sum = b.op("add", path, [y, branch], {}, b.fresh(`${path}.lora_out`));
      b.replaceUses(y, sum);
    }
  }
  return inj.finish();
}
