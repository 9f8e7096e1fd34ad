/**
 * Pass require-trainable: after freezing and injection, at least one parameter must train (P503).
 * Selections can all be empty of what a method needs (bitfit on modules without bias, unfreeze
 * taken back by a later freeze), and a run that trains nothing should stop here, not after loading.
 */
import { diag } from "../diagnostics/index.js";
import type { Graph } from "../ir/index.js";
import type { PassContext } from "./context.js";

export function requireTrainable(graph: Graph, ctx: PassContext): Graph {
  if (!graph.params.some((p) => p.trainable)) {
    const at = ctx.spec.methods[0]?.span ?? ctx.spec.freeze[0]?.span ?? ctx.spec.model?.span;
    ctx.diagnostics.push(diag("P503", ctx.file, at, ["after freezing and injection no parameter is trainable"]));
  }
  return graph;
}
