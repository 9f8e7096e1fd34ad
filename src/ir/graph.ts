/**
 * The IR graph: plain, JSON-serialisable data. Values are SSA and named after Hugging Face module
 * paths (`model.layers.0.self_attn.q_proj.out`), parameters after checkpoint tensors
 * (`model.layers.0.self_attn.q_proj.weight`), so the text form reads like the model and weights and
 * adapters bind by name. Graph inputs, parameters and op outputs share one namespace; ops are kept
 * in a valid execution order.
 */
import type { Attrs } from "./opdef.js";
import type { DType, Shape } from "./shape.js";

export type { Attrs, AttrValue } from "./opdef.js";
export type { DType, Dim, Shape, TensorType } from "./shape.js";

/** A named tensor: a graph input or an op output. */
export interface ValueDecl {
  name: string;
  dtype: DType;
  shape: Shape;
}

/** How a new (non-checkpoint) parameter starts; base parameters are loaded and carry none. */
export type ParamInit =
  | { kind: "zeros" }
  | { kind: "ones" }
  | { kind: "constant"; value: number }
  | { kind: "normal"; mean: number; std: number }
  | { kind: "uniform"; low: number; high: number }
  /** Copies of rows of another parameter (prompt tuning initialised from token embeddings). */
  | { kind: "rows"; from: string; rows: number[] };

export interface Param {
  /** Checkpoint tensor name: `model.layers.0.self_attn.q_proj.weight`. */
  name: string;
  shape: number[];
  dtype: DType;
  trainable: boolean;
  /** `base` for checkpoint weights, else the method that added it (`lora`, `ia3`, `prefix`...). */
  origin: string;
  /** Index of the spec method that added (or trains) it, for per-method accounting. */
  method?: number;
  init?: ParamInit;
}

export interface Op {
  op: string;
  /** The HF module that owns the op (`model.layers.0.self_attn`); empty for the model root (the loss). */
  module: string;
  inputs: string[];
  outputs: ValueDecl[];
  attrs: Attrs;
}

export interface Graph {
  /** Human name of the model the graph was built from (`chatglm2`, `builtin:stories260K`). */
  name: string;
  inputs: ValueDecl[];
  params: Param[];
  ops: Op[];
  /** Values the graph hands back (`loss`, `logits`). */
  outputs: string[];
  /**
   * Set by autodiff: the forward values (activations and graph inputs) that backward ops read, in
   * definition order. Memory planning keeps these until backward and may free every other
   * activation as soon as its last forward reader has run.
   */
  saved?: string[];
}

/** A deep copy; graphs are plain data, so structured cloning is exact. */
export function cloneGraph(g: Graph): Graph {
  return structuredClone(g);
}

/** The op that defines each op-output value. */
export function producers(g: Graph): Map<string, Op> {
  const m = new Map<string, Op>();
  for (const op of g.ops) for (const o of op.outputs) m.set(o.name, op);
  return m;
}

/** Every (op, input slot) that reads each value. */
export function usesOf(g: Graph): Map<string, { op: Op; slot: number }[]> {
  const m = new Map<string, { op: Op; slot: number }[]>();
  for (const op of g.ops)
    op.inputs.forEach((v, slot) => {
      const l = m.get(v);
      if (l) l.push({ op, slot });
      else m.set(v, [{ op, slot }]);
    });
  return m;
}

export function findParam(g: Graph, name: string): Param | undefined {
  return g.params.find((p) => p.name === name);
}

/** Ops whose outputs are all unread, repeatedly, until none is left (graph outputs keep theirs alive). */
export function pruneDeadOps(g: Graph): Graph {
  const out = cloneGraph(g);
  for (;;) {
    const used = new Set(out.outputs);
    for (const op of out.ops) for (const v of op.inputs) used.add(v);
    const keep = out.ops.filter((op) => op.outputs.some((o) => used.has(o.name)));
    if (keep.length === out.ops.length) return out;
    out.ops = keep;
  }
}
