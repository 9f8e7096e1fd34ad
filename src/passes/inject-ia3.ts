/**
 * Pass inject-ia3 (peft-methods.md §3.1): a learned vector rescales each targeted module, ones at
 * the start so the model is unchanged:
 *
 *   other modules:        <module>.ia3_l [out,1]   y' = (x·Wᵀ + b) ⊙ l     (after the bias; l is flattened to [out])
 *   feed-forward modules: <module>.ia3_l [1,in]    y' = (x ⊙ l)·Wᵀ + b     (the linear op reads the scaled input)
 *
 * Feed-forward modules are the targets whose path ends with one of `options.feedforward` (PEFT's
 * plain endswith test), or by default with one of the profile's feed-forward names. A feedforward
 * name that matches no target is an error, as PEFT requires feedforward_modules ⊆ target_modules.
 * IA3 scales the base projection only: a LoRA branch on the same module adds to the scaled output
 * and reads the unscaled input.
 */
import { diag, q } from "../diagnostics/index.js";
import type { Graph } from "../ir/index.js";
import type { PassContext } from "./context.js";
import { Injector, linearOp, methodsOf } from "./inject/common.js";

export function injectIa3(graph: Graph, ctx: PassContext): Graph {
  const found = methodsOf(ctx, "ia3");
  if (found.length === 0) return graph;
  const inj = new Injector(graph);
  const { b } = inj;
  for (const { m, i } of found) {
    if (m.gated) {
      ctx.diagnostics.push(diag("P316", ctx.file, m.span, ["a gate on ia3", "gates exist for lora, adapters, prefix and p_tuning_v2"]));
      continue;
    }
    const owner = { origin: "ia3", method: i };
    const modules = (ctx.targets[i]?.modules ?? []).map((x) => x.module);
    const endsWith = (path: string, name: string) => path === name || path.endsWith(name);
    const names = m.options.feedforward ?? ctx.profile.feedforward.map((n) => `.${n}`);
    if (m.options.feedforward) {
      for (const name of m.options.feedforward) {
        if (!modules.some((mod) => endsWith(mod.path, name))) {
          const leaves = [...new Set(modules.map((mod) => mod.path.split(".").pop()!))];
          ctx.diagnostics.push(diag("P401", ctx.file, m.span, [`feedforward ${q(name)}`, "the modules ia3 adapts", `they are ${leaves.join(", ")}`]));
          return graph;
        }
      }
    }
    for (const module of modules) {
      const path = module.path;
      const base = linearOp(b, module);
      const name = `${path}.ia3_l`;
      if (names.some((n) => endsWith(path, n))) {
        const l = inj.param(name, [1, module.inFeatures], { kind: "ones" }, owner);
        const x = base.inputs[0]!;
        b.before(base);
        const scaled = b.op("mul", path, [x, l], {}, b.fresh(`${path}.ia3_in`));
        b.setInputs(base, [scaled, ...base.inputs.slice(1)]);
      } else {
        const l = inj.param(name, [module.outFeatures, 1], { kind: "ones" }, owner);
        const y = base.outputs[0]!.name;
        b.after(y);
        const flat = b.op("reshape", path, [l], { shape: [module.outFeatures] }, b.fresh(`${path}.ia3_l.flat`));
        const scaled = b.op("mul", path, [y, flat], {}, b.fresh(`${path}.ia3_out`));
        b.replaceUses(y, scaled);
      }
    }
  }
  return inj.finish();
}
