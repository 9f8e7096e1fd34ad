/**
 * Shape inference over a whole graph: every op's output types from its inputs, in order. verify()
 * compares these with the recorded types; passes that change a shape upstream (prompt tuning makes
 * T into T+P) call retypeGraph to bring every recorded type downstream in line.
 */
import { cloneGraph, type Graph } from "./graph.js";
import { inferOp } from "./ops.js";
import type { TensorType } from "./shape.js";

export interface Inference {
  /** Inferred type of every value (recorded types stand in where a rule failed, to avoid cascades). */
  types: Map<string, TensorType>;
  /** `op N (kind at module): reason`, one per op that could not be typed. */
  errors: string[];
}

export function opLabel(g: Graph, i: number): string {
  const op = g.ops[i]!;
  return `op ${i} (${op.op} ${op.outputs[0]?.name ?? "<no output>"})`;
}

export function inferGraph(g: Graph): Inference {
  const types = new Map<string, TensorType>();
  const errors: string[] = [];
  for (const v of g.inputs) types.set(v.name, { dtype: v.dtype, shape: v.shape });
  for (const p of g.params) types.set(p.name, { dtype: p.dtype, shape: p.shape });
  g.ops.forEach((op, i) => {
    const ins: TensorType[] = [];
    const missing = op.inputs.filter((v) => !types.has(v));
    for (const v of op.inputs) {
      const t = types.get(v);
      if (t) ins.push(t);
    }
    const res = missing.length ? `undefined input ${missing.map((m) => `'${m}'`).join(", ")}` : inferOp(op.op, ins, op.attrs);
    if (typeof res !== "string" && res.length !== op.outputs.length) {
      errors.push(`${opLabel(g, i)}: rule gives ${res.length} outputs, op records ${op.outputs.length}`);
      for (const o of op.outputs) types.set(o.name, { dtype: o.dtype, shape: o.shape });
    } else if (typeof res === "string") {
      errors.push(`${opLabel(g, i)}: ${res}`);
      for (const o of op.outputs) types.set(o.name, { dtype: o.dtype, shape: o.shape });
    } else {
      op.outputs.forEach((o, j) => types.set(o.name, res[j] ?? { dtype: o.dtype, shape: o.shape }));
    }
  });
  return { types, errors };
}

/** A copy of `g` whose recorded output types are the inferred ones; throws when some op is ill-typed. */
export function retypeGraph(g: Graph): Graph {
  const { types, errors } = inferGraph(g);
  if (errors.length) throw new Error(`cannot retype graph:\n  ${errors.join("\n  ")}`);
  const out = cloneGraph(g);
  for (const op of out.ops)
    for (const o of op.outputs) {
      const t = types.get(o.name)!;
      o.dtype = t.dtype;
      o.shape = t.shape;
    }
  return out;
}
