/**
 * The forward graph as inference runs it: dropout is the identity (PEFT generates in eval mode),
 * and the loss with the labels it reads is gone, leaving `logits` the only output. Both the
 * reference decoder and the decode-step graph start from this.
 */
import { cloneGraph, pruneDeadOps, type Graph } from "../../../ir/index.js";

export function inferenceGraph(forward: Graph): Graph {
  const g = cloneGraph(forward);
  if (!g.ops.some((op) => op.outputs.some((o) => o.name === "logits"))) throw new Error(`decode: graph ${g.name} computes no 'logits'`);
  const renamed = new Map<string, string>();
  const name = (v: string): string => renamed.get(v) ?? v;
  g.ops = g.ops.filter((op) => {
    op.inputs = op.inputs.map(name);
    if (op.op !== "dropout") return true;
    renamed.set(op.outputs[0]!.name, op.inputs[0]!);
    return false;
  });
  g.outputs = ["logits"];
  const pruned = pruneDeadOps(g);
  delete pruned.saved;
  const read = new Set(pruned.ops.flatMap((op) => op.inputs));
  pruned.params = pruned.params.filter((p) => read.has(p.name));
  pruned.inputs = pruned.inputs.filter((v) => read.has(v.name));
  return pruned;
}
