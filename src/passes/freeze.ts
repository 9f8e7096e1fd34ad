/**
 * Pass freeze: every base parameter is frozen, then `unfreeze SEL` makes the parameters of the
 * selected modules trainable (in statement order, so a later `freeze SEL` wins), and bitfit makes
 * the biases of its modules trainable. Method parameters are added, trainable, by the inject passes.
 */
import { cloneGraph, type Graph } from "../ir/index.js";
import type { PassContext } from "./context.js";

export function freeze(graph: Graph, ctx: PassContext): Graph {
  const g = cloneGraph(graph);
  const owned = (paths: Set<string>) => (name: string) => paths.has(name.slice(0, name.lastIndexOf(".")));
  const trainable = new Set<string>();
  const unfrozen = owned(new Set(ctx.unfrozen.map((m) => m.module.path)));
  const refrozen = owned(new Set(ctx.refrozen.map((m) => m.module.path)));
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
    if ((unfrozen(p.name) && !refrozen(p.name)) || bitfit.has(p.name)) trainable.add(p.name);
    p.trainable = trainable.has(p.name);
  }
  return g;
}
