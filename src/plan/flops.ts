/**
 * FLOPs per training step, for `pefc plan`: forward, backward and optimizer totals of a compiled
 * step graph at given batch and sequence sizes, and what backward would cost without pruning (every
 * parameter trainable, every activation gradient computed), so the saving is visible. Counts are
 * the usual model: a multiply-add is 2 FLOPs (a matmul M×K by K×N is 2·M·N·K), elementwise work is
 * a few FLOPs per element, and data movement (reshape, split, slice, concat) is free.
 */
import type { Graph, Op } from "../ir/graph.js";
import { UPDATE_OPS } from "../ir/step-names.js";
import type { Dim } from "../ir/shape.js";
import { trainingGraph } from "../passes/autodiff.js";

export interface StepFlops {
  forward: number;
  backward: number;
  optimizer: number;
  /** Backward of the same model with every parameter trainable: what pruning saved is the difference. */
  unprunedBackward: number;
}

export type Sizes = Readonly<Record<string, number>>;

/** A dimension's value with symbols bound by env (an unbound symbol counts as 1). */
function dimValue(d: Dim, env: Sizes): number {
  if (typeof d === "number") return d;
  let total = 0;
  for (const term of d.match(/[+-]?[^+-]+/g) ?? []) {
    const m = /^([+-]?)(?:(\d+)\*)?([A-Za-z_]\w*)?$|^([+-]?)(\d+)$/.exec(term);
    if (!m) throw new Error(`flops: bad dimension ${d}`);
    if (m[3] !== undefined) total += (m[1] === "-" ? -1 : 1) * Number(m[2] ?? 1) * (env[m[3]] ?? 1);
    else total += (m[4] === "-" ? -1 : 1) * Number(m[5]);
  }
  return total;
}

const FREE = new Set(["reshape", "split_heads", "merge_heads", "split", "slice", "concat", "broadcast", "full", "slice_backward", "embedding"]);

/** Per-element cost of the elementwise-like ops (default 1). */
const PER_ELEMENT: Readonly<Record<string, number>> = {
  rmsnorm: 4, layernorm: 7, rmsnorm_backward: 8, layernorm_backward: 12, rope: 3, rope_backward: 3,
  silu: 4, gelu_tanh: 8, gelu: 8, sigmoid: 4, tanh: 4, silu_backward: 6, gelu_tanh_backward: 12, gelu_backward: 10,
  swiglu: 5, swiglu_backward: 8, cross_entropy: 4, cross_entropy_backward: 5,
  adam_update: 12, adamw_update: 13, sgd_update: 4,
};

/** FLOPs of one op, from its recorded types with symbols bound by `env`. */
export function opFlops(op: Op, typeOf: (v: string) => Dim[], env: Sizes): number {
  const n = (s: Dim[]): number => s.reduce((a: number, d) => a * dimValue(d, env), 1);
  const out = (i = 0): Dim[] => op.outputs[i]!.shape;
  switch (op.op) {
    case "linear": {
      const x = typeOf(op.inputs[0]!);
      const k = dimValue(x[x.length - 1]!, env);
      return 2 * n(out()) * k + (op.inputs.length > 2 ? n(out()) : 0);
    }
    case "linear_grad_input": {
      const dy = typeOf(op.inputs[0]!);
      return 2 * n(out()) * dimValue(dy[dy.length - 1]!, env);
    }
    case "linear_grad_weight": {
      const x = typeOf(op.inputs[0]!);
      const m = n(x) / dimValue(x[x.length - 1]!, env);
      return 2 * n(out()) * m;
    }
    case "attention":
    case "attention_backward": {
      const [b, t, hq, hd] = typeOf(op.inputs[0]!).map((d) => dimValue(d, env)) as [number, number, number, number];
      const s = dimValue(typeOf(op.inputs[1]!)[1]!, env);
      const pk = op.op === "attention" ? op.inputs[3] : op.inputs[5];
      const p = pk ? dimValue(typeOf(pk).at(-3)!, env) : 0;
      // Forward: scores and the weighted sum; backward: scores again, dP, dV, dQ, dK.
      return (op.op === "attention" ? 4 : 10) * b * hq * t * (s + p) * hd;
    }
    case "clip_grad_norm":
      // A square and add per element for the norm, a multiply per element to scale.
      return 3 * op.outputs.slice(0, -1).reduce((a, o) => a + n(o.shape), 0);
    case "embedding_grad":
      return n(typeOf(op.inputs[1]!));
    case "adalora_orth_reg":
    case "adalora_orth_reg_backward":
      return op.inputs.reduce((a, v) => {
        const s = typeOf(v).map((d) => dimValue(d, env));
        return s.length === 2 ? a + 2 * s[0]! * s[1]! * Math.min(s[0]!, s[1]!) : a;
      }, 0);
    default:
      if (FREE.has(op.op)) return 0;
      return (PER_ELEMENT[op.op] ?? 1) * Math.max(...op.outputs.map((o) => n(o.shape)));
  }
}

type Phase = "forward" | "backward" | "optimizer";

/** Backward ops are the ones autodiff emitted (their outputs are gradients); update ops are the optimizer's. */
function phaseOf(op: Op): Phase {
  if (UPDATE_OPS.has(op.op)) return "optimizer";
  return op.outputs.every((o) => o.name.startsWith("grad.")) ? "backward" : "forward";
}

function typeTable(g: Graph): (v: string) => Dim[] {
  const t = new Map<string, Dim[]>();
  for (const v of g.inputs) t.set(v.name, v.shape);
  for (const p of g.params) t.set(p.name, p.shape);
  for (const op of g.ops) for (const o of op.outputs) t.set(o.name, o.shape);
  return (v) => {
    const s = t.get(v);
    if (!s) throw new Error(`flops: unknown value ${v}`);
    return s;
  };
}

function totals(g: Graph, env: Sizes): Record<Phase, number> {
  const typeOf = typeTable(g);
  const sum: Record<Phase, number> = { forward: 0, backward: 0, optimizer: 0 };
  for (const op of g.ops) sum[phaseOf(op)] += opFlops(op, typeOf, env);
  return sum;
}

/** FLOPs of one micro-batch's forward and backward and of one optimizer update, at sizes `env` (B, T). */
export function stepFlops(g: Graph, env: Sizes): StepFlops {
  if (g.ops.some((op) => op.op === "linear_fused" || op.op === "linear_grad_input_sum" || op.op === "silu_mul_linear" || op.op === "gate_up_silu_mul" || op.op === "linear_grad_silu_mul" || op.op === "cross_entropy_grad")) throw new Error("stepFlops: count FLOPs on the unfused graph (compileSpec with fuse: false)");
  const t = totals(g, env);
  const forwardOps = g.ops.filter((op) => phaseOf(op) === "forward");
  const full: Graph = { ...structuredClone(g), ops: structuredClone(forwardOps), outputs: ["loss"] };
  delete full.saved;
  full.params = full.params.map((p) => ({ ...p, trainable: true }));
  const unpruned = totals(trainingGraph(full, 1), env).backward;
  return { forward: t.forward, backward: t.backward, optimizer: t.optimizer, unprunedBackward: unpruned };
}
