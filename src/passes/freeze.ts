/**
 * Pass freeze: every base parameter starts frozen; the freeze and unfreeze statements then apply in
 * file order (`unfreeze base;` trains everything, a later `freeze SEL;` takes modules back out);
 * finally bitfit and lora's `bias` option make their biases trainable. Method parameters are added,
 * trainable, by the inject passes.
 */
import { cloneGraph, type Graph } from "../ir/index.js";
import type { PassContext } from "./context.js";

export function freeze(graph: Graph, ctx: PassContext): Graph {
  const g = cloneGraph(graph);
  const owner = (name: string) => name.slice(0, name.lastIndexOf("."));
  const trainable = new Set<string>();
  for (const step of ctx.freezeSteps) {
    const paths = new Set(step.modules.map((m) => m.module.path));
    for (const p of g.params) {
      if (p.origin !== "base" || !(step.all || paths.has(owner(p.name)))) continue;
      if (step.action === "unfreeze") trainable.add(p.name);
      else trainable.delete(p.name);
    }
  }
  const bitfit = new Set<string>();
  ctx.spec.methods.forEach((m, i) => {
    if (m.method === "bitfit") for (const x of ctx.targets[i]?.modules ?? []) bitfit.add(`${x.module.path}.bias`);
    if (m.method === "lora" && m.options.bias !== "none") {
      const mods = m.options.bias === "all" ? ctx.profile.modules : (ctx.targets[i]?.modules ?? []).map((x) => x.module);
      for (const mod of mods) if (mod.hasBias) bitfit.add(`${mod.path}.bias`);
    }
  });
  for (const p of g.params) {
    if (p.origin !== "base") continue;
    p.trainable = trainable.has(p.name) || bitfit.has(p.name);
  }
  return g;
}
