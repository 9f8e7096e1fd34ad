/**
 * Concrete shapes for a graph at fixed sizes: every symbolic dimension (B, T, T+20) evaluated, for
 * every value and for the dimension attributes ops carry (slice bounds, full's shape).
 */
import type { Attrs, Dim, Graph, Op } from "../../../ir/index.js";
import { opDef } from "../../../ir/index.js";

export type DimEnv = Readonly<Record<string, number>>;

/** A dimension (a number or a sum like `T+20`, `2*T-1`) under `env`. */
export function evalDim(d: Dim, env: DimEnv): number {
  if (typeof d === "number") return d;
  let total = 0;
  for (const part of d.replace(/\s+/g, "").match(/[+-]?[^+-]+/g) ?? []) {
    const sign = part.startsWith("-") ? -1 : 1;
    const body = part.replace(/^[+-]/, "");
    const star = body.indexOf("*");
    const [k, sym] = star >= 0 ? [Number(body.slice(0, star)), body.slice(star + 1)] : /^\d+$/.test(body) ? [Number(body), undefined] : [1, body];
    if (sym === undefined) total += sign * k;
    else {
      const v = env[sym];
      if (v === undefined) throw new Error(`program: no value for dimension symbol '${sym}'`);
      total += sign * k * v;
    }
  }
  if (total < 0) throw new Error(`program: dimension ${d} is negative (${total}) for ${JSON.stringify(env)}`);
  return total;
}

/** Shape of every input, parameter and op output of `g`. */
export function valueShapes(g: Graph, env: DimEnv): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const v of g.inputs) out.set(v.name, v.shape.map((d) => evalDim(d, env)));
  for (const p of g.params) out.set(p.name, p.shape.slice());
  for (const op of g.ops) for (const o of op.outputs) out.set(o.name, o.shape.map((d) => evalDim(d, env)));
  return out;
}

/** The op's attributes with `dim`/`dims` attributes evaluated. */
export function concreteAttrs(op: Op, env: DimEnv): Attrs {
  const def = opDef(op.op);
  const out: Attrs = { ...op.attrs };
  for (const [k, spec] of Object.entries(def?.attrs ?? {})) {
    const v = op.attrs[k];
    if (v === undefined) continue;
    if (spec.kind === "dim") out[k] = evalDim(v as Dim, env);
    if (spec.kind === "dims") out[k] = (v as Dim[]).map((d) => evalDim(d, env));
  }
  return out;
}
