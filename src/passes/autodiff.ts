/**
 * Pass autodiff: appends the backward graph of the loss toward the trainable parameters, and only
 * them. A value gets a gradient only when it lies on a path from a trainable parameter to the loss,
 * so frozen weights get no weight gradient and nothing below the earliest trainable parameter runs
 * backward. The loss's gradient is seeded with 1/grad_accum (each micro-batch's loss divided by
 * grad_accum, as Accelerate does; the runtime sums micro-batch gradients). Graph outputs become the
 * loss and `grad.<param>` per trainable parameter; forward work that training does not need
 * (logits as an output) is pruned, and the forward values backward reads are recorded in `saved`.
 */
import { GRAD_RULES, NO_GRAD_OPS } from "../ir/grad.js";
import { GraphBuilder, pruneDeadOps, type Graph } from "../ir/index.js";
import { gradName } from "../ir/step-names.js";
import { LOSS } from "../models/graph/index.js";
import type { PassContext } from "./context.js";

export interface BackwardOptions {
  /** The value to differentiate: a scalar, unless `seed` names its gradient. */
  of: string;
  /** A graph value holding d(of), shaped like it; default a constant `seedValue`. */
  seed?: string;
  seedValue?: number;
  /** Parameters (or graph inputs) to differentiate toward; default the trainable parameters. */
  wrt?: readonly string[];
}

export interface Backward {
  graph: Graph;
  /** Gradient value per differentiated parameter, `grad.<param>`, in parameter order. */
  grads: Map<string, string>;
  /** Index of the first backward op in graph.ops. */
  firstBackwardOp: number;
}

/** Names of values that lie on a path from one of `from` to `to`. */
function onPath(g: Graph, from: ReadonlySet<string>, to: string): Set<string> {
  const requires = new Set(from);
  for (const op of g.ops) if (op.inputs.some((v) => requires.has(v))) for (const o of op.outputs) requires.add(o.name);
  const reaches = new Set([to]);
  for (const op of [...g.ops].reverse()) if (op.outputs.some((o) => reaches.has(o.name))) for (const v of op.inputs) reaches.add(v);
  return new Set([...requires].filter((v) => reaches.has(v)));
}

export function differentiate(g: Graph, o: BackwardOptions): Backward {
  const wrt = o.wrt ?? g.params.filter((p) => p.trainable).map((p) => p.name);
  const need = onPath(g, new Set(wrt), o.of);
  const b = GraphBuilder.edit(g).atEnd();
  const forwardOps = [...g.ops];
  const firstBackwardOp = forwardOps.length;
  const parts = new Map<string, string[]>();
  /** Values created as gradient contributions of one value; renamed to `grad.<value>` at the end. */
  const ownPart = new Map<string, string>();
  const renames = new Map<string, string>();
  const add = (v: string, grad: string): void => {
    const l = parts.get(v);
    if (l) l.push(grad);
    else parts.set(v, [grad]);
  };
  const partName = (v: string): string => {
    const n = b.fresh(`grad.${v}.part`);
    ownPart.set(n, v);
    return n;
  };
  /** The one gradient of `v`: its only contribution, or their sum. */
  const total = (v: string, module: string): string | undefined => {
    const l = parts.get(v);
    if (!l) return undefined;
    let out = l[0]!;
    if (l.length > 1) out = b.op("add_grad", module, l, {}, partName(v));
    if (ownPart.get(out) === v) renames.set(out, gradName(v));
    parts.set(v, [out]);
    return out;
  };

  if (need.has(o.of)) add(o.of, o.seed ?? b.op("full", "", [], { shape: [], value: o.seedValue ?? 1, dtype: "f32" }, partName(o.of)));
  for (const op of forwardOps.reverse()) {
    const dys = op.outputs.map((x) => (need.has(x.name) ? total(x.name, op.module) : undefined));
    if (dys.every((d) => d === undefined)) continue;
    const needs = op.inputs.map((v) => need.has(v));
    if (!needs.some(Boolean) || NO_GRAD_OPS.has(op.op)) continue;
    const rule = GRAD_RULES[op.op];
    if (!rule) throw new Error(`autodiff: op '${op.op}' (${op.outputs[0]?.name}) has no gradient rule`);
    const grads = rule({ b, op, dys, needs, name: (slot) => partName(op.inputs[slot]!) });
    grads.forEach((gr, slot) => {
      if (gr !== undefined && needs[slot]) add(op.inputs[slot]!, gr);
    });
  }

  const grads = new Map<string, string>();
  for (const p of wrt) {
    let gv = total(p, "");
    if (gv === undefined) continue;
    // A gradient that is another value's (a parameter added straight to an activation) gets its own name.
    if (renames.get(gv) !== gradName(p)) gv = b.op("add_grad", "", [gv], {}, partName(p));
    renames.set(gv, gradName(p));
    grads.set(p, gradName(p));
    b.output(gv);
  }
  const graph = renameValues(b.finish(), renames);
  return { graph, grads, firstBackwardOp };
}

function renameValues(g: Graph, renames: ReadonlyMap<string, string>): Graph {
  const r = (v: string): string => renames.get(v) ?? v;
  for (const op of g.ops) {
    op.inputs = op.inputs.map(r);
    for (const o of op.outputs) o.name = r(o.name);
  }
  g.outputs = g.outputs.map(r);
  return g;
}

/** Forward values (op outputs and graph inputs, not parameters) that ops from `from` on read. */
export function savedValues(g: Graph, from: number): string[] {
  const forward = new Set(g.inputs.map((v) => v.name));
  g.ops.slice(0, from).forEach((op) => op.outputs.forEach((x) => forward.add(x.name)));
  const read = new Set<string>();
  for (const op of g.ops.slice(from)) for (const v of op.inputs) if (forward.has(v)) read.add(v);
  const order = [...g.inputs.map((v) => v.name), ...g.ops.slice(0, from).flatMap((op) => op.outputs.map((x) => x.name))];
  return order.filter((v) => read.has(v));
}

/** The training graph: loss and trainable gradients as outputs, dead forward work pruned. */
export function trainingGraph(g: Graph, gradAccum: number): Graph {
  const { graph, grads, firstBackwardOp } = differentiate(g, { of: LOSS, seedValue: 1 / gradAccum });
  graph.outputs = [LOSS, ...grads.values()];
  const forward = new Set(graph.ops.slice(0, firstBackwardOp).map((op) => op.outputs[0]!.name));
  const pruned = pruneDeadOps(graph);
  pruned.saved = savedValues(pruned, pruned.ops.filter((op) => forward.has(op.outputs[0]!.name)).length);
  return pruned;
}

export function autodiff(graph: Graph, ctx: PassContext): Graph {
  return trainingGraph(graph, ctx.spec.train.gradAccum);
}
