/**
 * The IR invariants, checked after every pass: each value defined once and before use, every op
 * known with fitting arity and attributes, recorded types equal to what the shape rules infer,
 * parameters well-formed and read, outputs defined, no dead ops. Returns messages, never throws.
 */
import type { Graph } from "./graph.js";
import { opLabel } from "./infer.js";
import { inferOp } from "./ops.js";
import { DTYPES, formatType, isDim, shapeEq, type TensorType } from "./shape.js";

export function verify(g: Graph): string[] {
  const errs: string[] = [];
  /** Where each name is defined: -1 for inputs and params, else the op index. */
  const defAt = new Map<string, number>();
  const define = (name: string, at: number, what: string): void => {
    if (defAt.has(name)) errs.push(`value '${name}' is defined twice (again as ${what})`);
    else defAt.set(name, at);
  };

  const types = new Map<string, TensorType>();
  for (const v of g.inputs) {
    define(v.name, -1, "input");
    if (!DTYPES.includes(v.dtype)) errs.push(`input '${v.name}' has unknown dtype '${String(v.dtype)}'`);
    if (!v.shape.every(isDim)) errs.push(`input '${v.name}' has a bad shape ${JSON.stringify(v.shape)}`);
    types.set(v.name, { dtype: v.dtype, shape: v.shape });
  }
  for (const p of g.params) {
    define(p.name, -1, "param");
    if (!DTYPES.includes(p.dtype) || p.dtype === "i32") errs.push(`param '${p.name}' must be f32 or f16, got '${String(p.dtype)}'`);
    if (!p.shape.every((d) => Number.isInteger(d) && d > 0)) errs.push(`param '${p.name}' has a bad shape ${JSON.stringify(p.shape)}`);
    if (!p.origin) errs.push(`param '${p.name}' has no origin`);
    types.set(p.name, { dtype: p.dtype, shape: p.shape });
  }
  g.ops.forEach((op, i) => op.outputs.forEach((o) => define(o.name, i, `output of ${opLabel(g, i)}`)));

  g.ops.forEach((op, i) => {
    const label = opLabel(g, i);
    const ins: TensorType[] = [];
    let ok = true;
    for (const v of op.inputs) {
      const at = defAt.get(v);
      if (at === undefined) errs.push(`${label}: undefined value '${v}'`);
      else if (at >= i) errs.push(`${label}: reads '${v}' before its definition at ${opLabel(g, at)}`);
      const t = at !== undefined && at < i ? types.get(v) : undefined;
      if (t) ins.push(t);
      else ok = false;
    }
    for (const o of op.outputs) {
      if (!DTYPES.includes(o.dtype) || !o.shape.every(isDim)) {
        errs.push(`${label}: output '${o.name}' has a bad type ${JSON.stringify({ dtype: o.dtype, shape: o.shape })}`);
        ok = false;
      }
      types.set(o.name, { dtype: o.dtype, shape: o.shape });
    }
    if (!ok) return;
    const res = inferOp(op.op, ins, op.attrs);
    if (typeof res === "string") return void errs.push(`${label}: ${res}`);
    if (res.length !== op.outputs.length)
      return void errs.push(`${label}: the rule gives ${res.length} outputs, the op records ${op.outputs.length}`);
    res.forEach((t, j) => {
      const o = op.outputs[j]!;
      if (t.dtype !== o.dtype || !shapeEq(t.shape, o.shape))
        errs.push(`${label}: output '${o.name}' is recorded as ${formatType(o)} but infers to ${formatType(t)}`);
    });
  });

  const read = new Set<string>();
  for (const op of g.ops) for (const v of op.inputs) read.add(v);
  if (g.outputs.length === 0) errs.push("the graph has no outputs");
  const seen = new Set<string>();
  for (const v of g.outputs) {
    if (!defAt.has(v)) errs.push(`graph output '${v}' is not defined`);
    if (seen.has(v)) errs.push(`graph output '${v}' is listed twice`);
    seen.add(v);
    read.add(v);
  }
  g.ops.forEach((op, i) => {
    if (!op.outputs.some((o) => read.has(o.name))) errs.push(`${opLabel(g, i)}: dead op, no output is read`);
  });
  for (const p of g.params) if (!read.has(p.name)) errs.push(`param '${p.name}' is never read`);
  return errs;
}
