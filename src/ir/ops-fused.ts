/**
 * Ops that appear only after autodiff, so they need no gradient rule: what the fuse pass makes out
 * of several (src/passes/fuse.ts; a linear layer with its LoRA branch and the residual add done in
 * the same pass over the output), and what the program builder splits an embedding table too large
 * for one storage binding into (codegen/wgsl/program/split.ts). Each has a reference kernel and a
 * WGSL lowering like any other op.
 */
import { defineOp, type OpDef } from "./opdef.js";
import { f, first, last, rank } from "./ops-util.js";
import { dimEq, formatType, shapeEq, type TensorType } from "./shape.js";

export const FUSED_OPS: Readonly<Record<string, OpDef>> = {
  silu_mul: defineOp({
    doc: "silu(gate) ⊙ up, llama's MLP activation in one pass; gate and up of one shape",
    inputs: ["gate", "up"],
    attrs: {},
    infer: ([g, u]) => first(f(g!, "gate"), f(u!, "up"), shapeEq(g!.shape, u!.shape) ? undefined : `up ${formatType(u!)} does not match gate ${formatType(g!)}`) ?? [{ dtype: "f32", shape: g!.shape }],
  }),
  silu_mul_backward: defineOp({
    doc: "(dgate, dup) of silu_mul from gate, up and dy: dy·up·silu'(gate) and dy·silu(gate)",
    inputs: ["gate", "up", "dy"],
    attrs: {},
    infer: ([g, u, dy]) => {
      const bad = first(f(g!, "gate"), f(u!, "up"), f(dy!, "dy"));
      if (bad) return bad;
      if (!shapeEq(g!.shape, u!.shape) || !shapeEq(g!.shape, dy!.shape)) return `gate ${formatType(g!)}, up ${formatType(u!)} and dy ${formatType(dy!)} must have one shape`;
      return [{ dtype: "f32", shape: g!.shape }, { dtype: "f32", shape: g!.shape }];
    },
  }),
  embedding_rows: defineOp({
    doc: "one row block of an embedding table: out[...] = table[id − start] for ids in [start, start + rows), zeros elsewhere; table [rows,D]",
    inputs: ["ids", "table"],
    attrs: { start: { kind: "int" } },
    infer: ([ids, table], a) => {
      const bad = first(ids!.dtype === "i32" ? undefined : `ids must be i32, got ${formatType(ids!)}`, f(table!, "table"), rank(table!, 2, "table"));
      if (bad) return bad;
      if (!(a.start >= 0)) return `start must be ≥ 0, got ${a.start}`;
      return [{ dtype: "f32", shape: [...ids!.shape, table!.shape[1]!] }];
    },
  }),

  gate_up_silu_mul: defineOp({
    doc: "(x·Wgᵀ, x·Wuᵀ, silu(x·Wgᵀ) ⊙ x·Wuᵀ) (x·W when transposed): llama's gate and up projections of one input with their SwiGLU activation, from one pass over x; both weights of one shape",
    inputs: ["x", "gate_weight", "up_weight"],
    attrs: { transposed: { kind: "bool", optional: true } },
    infer: ([x, wg, wu], a) => {
      const bad = first(f(x!, "x"), f(wg!, "gate_weight"), f(wu!, "up_weight"), rank(wg!, 2, "gate_weight"));
      if (bad) return bad;
      if (!shapeEq(wg!.shape, wu!.shape)) return `up_weight ${formatType(wu!)} does not match gate_weight ${formatType(wg!)}`;
      const [outF, inF] = a.transposed ? [wg!.shape[1]!, wg!.shape[0]!] : [wg!.shape[0]!, wg!.shape[1]!];
      if (!dimEq(last(x!.shape), inF)) return `x ${formatType(x!)} does not fit gate_weight ${formatType(wg!)}`;
      const out: TensorType = { dtype: "f32", shape: [...x!.shape.slice(0, -1), outF] };
      return [out, out, out];
    },
  }),

  silu_mul_linear: defineOp({
    doc: "(silu(gate) ⊙ up)·Wᵀ (+ residual): llama's down projection reading its SwiGLU activation as it goes, so the activation is never stored; gate and up of one shape",
    inputs: ["gate", "weight", "up", "residual?"],
    attrs: { transposed: { kind: "bool", optional: true }, residual: { kind: "bool" } },
    infer: ([g, w, u, r], a) => {
      const bad = first(f(g!, "gate"), f(w!, "weight"), f(u!, "up"), rank(w!, 2, "weight"));
      if (bad) return bad;
      if (!shapeEq(g!.shape, u!.shape)) return `up ${formatType(u!)} does not match gate ${formatType(g!)}`;
      const [outF, inF] = a.transposed ? [w!.shape[1]!, w!.shape[0]!] : [w!.shape[0]!, w!.shape[1]!];
      if (!dimEq(last(g!.shape), inF)) return `gate ${formatType(g!)} does not fit weight ${formatType(w!)}`;
      const out = [...g!.shape.slice(0, -1), outF];
      if (a.residual !== (r !== undefined)) return a.residual ? "residual: true needs a residual input" : "a residual input needs residual: true";
      if (r && (r.dtype !== "f32" || !shapeEq(r.shape, out))) return `residual ${formatType(r)} must be f32 of the output's shape`;
      return [{ dtype: "f32", shape: out }];
    },
  }),

  cross_entropy_grad: defineOp({
    doc: "cross_entropy and its cross_entropy_backward in one pass over the logits: (loss, dlogits), the mean loss over counted tokens and dloss/count · (softmax(logits) − onehot(shifted label)) on counted rows, 0 elsewhere",
    inputs: ["logits", "labels", "dloss"],
    attrs: { ignore_index: { kind: "int" } },
    infer: ([lg, lb, dl]) => {
      const bad = first(f(lg!, "logits"), rank(lg!, 3, "logits"), lb!.dtype === "i32" ? undefined : `labels must be i32, got ${formatType(lb!)}`, f(dl!, "dloss"), rank(dl!, 0, "dloss"));
      if (bad) return bad;
      if (lb!.shape.length !== 2 || !dimEq(lb!.shape[0]!, lg!.shape[0]!) || !dimEq(lb!.shape[1]!, lg!.shape[1]!))
        return `labels ${formatType(lb!)} must be [${String(lg!.shape[0])},${String(lg!.shape[1])}] to fit logits ${formatType(lg!)}`;
      return [{ dtype: "f32", shape: [] }, { dtype: "f32", shape: lg!.shape }];
    },
  }),

  linear_grad_silu_mul: defineOp({
    doc: "(dgate, dup) of silu_mul for dh = dy·W (dy·Wᵀ when transposed): the down projection's dX with SwiGLU's backward applied as it is stored, so dh is never written",
    inputs: ["dy", "weight", "gate", "up"],
    attrs: { transposed: { kind: "bool", optional: true } },
    infer: ([dy, w, g, u], a) => {
      const bad = first(f(dy!, "dy"), f(w!, "weight"), rank(w!, 2, "weight"), f(g!, "gate"), f(u!, "up"));
      if (bad) return bad;
      const [inF, outF] = a.transposed ? [w!.shape[0]!, w!.shape[1]!] : [w!.shape[1]!, w!.shape[0]!];
      if (!dimEq(last(dy!.shape), outF)) return `dy ${formatType(dy!)} does not fit weight ${formatType(w!)}`;
      const dh = [...dy!.shape.slice(0, -1), inF];
      if (!shapeEq(g!.shape, dh) || !shapeEq(u!.shape, dh)) return `gate ${formatType(g!)} and up ${formatType(u!)} must have dy·W's shape [${dh.join(", ")}]`;
      return [{ dtype: "f32", shape: dh }, { dtype: "f32", shape: dh }];
    },
  }),

  linear_grad_input_sum: defineOp({
    doc: "Σ_t dy_t·W_t (dy_t·W_tᵀ where transposed[t] is 1) + Σ addends: the gradients of one value read by several linear layers, and any other gradients of it; inputs dy_1, W_1, …, dy_terms, W_terms, then the addends, each of the output's shape",
    inputs: ["xs..."],
    attrs: { terms: { kind: "int" }, transposed: { kind: "ints", optional: true } },
    infer: (xs, a) => {
      const T = a.terms;
      if (!(T >= 1) || xs.length < 2 * T) return `linear_grad_input_sum with ${T} terms takes at least ${2 * T} inputs, got ${xs.length}`;
      const tr = a.transposed ?? [];
      if (a.transposed !== undefined && (tr.length !== T || tr.some((t) => t !== 0 && t !== 1))) return `transposed must hold one 0 or 1 per term (${T}), got [${tr.join(", ")}]`;
      let out: TensorType["shape"] | undefined;
      for (let t = 0; t < T; t++) {
        const dy = xs[2 * t]!;
        const w = xs[2 * t + 1]!;
        const bad = first(f(dy, `dy_${t + 1}`), f(w, `W_${t + 1}`), rank(w, 2, `W_${t + 1}`));
        if (bad) return bad;
        const [inF, outF] = tr[t] === 1 ? [w.shape[0]!, w.shape[1]!] : [w.shape[1]!, w.shape[0]!];
        if (!dimEq(last(dy.shape), outF)) return `dy_${t + 1} ${formatType(dy)} does not fit W_${t + 1} ${formatType(w)}`;
        const shape = [...dy.shape.slice(0, -1), inF];
        if (out && !shapeEq(out, shape)) return `term ${t + 1} gives [${shape.join(", ")}], term 1 [${out.join(", ")}]`;
        out = shape;
      }
      for (const [i, r] of xs.slice(2 * T).entries()) {
        const bad = f(r, `addend ${i + 1}`);
        if (bad) return bad;
        if (!shapeEq(r.shape, out!)) return `addend ${i + 1} ${formatType(r)} must have the output's shape [${out!.join(", ")}]`;
      }
      return [{ dtype: "f32", shape: out! }];
    },
  }),

  linear_fused: defineOp({
    doc: "x·Wᵀ (+ bias) (+ s · u·Bᵀ) (+ residual): a linear layer with its LoRA branch and residual add; extras in that order, as the flags say. s is lora_scale, or with lora_ranknum AdaLoRA's lora_scale / (ranknum + lora_eps), ranknum a [1] extra after B",
    inputs: ["x", "weight", "extras..."],
    attrs: {
      transposed: { kind: "bool", optional: true },
      bias: { kind: "bool" },
      lora_scale: { kind: "float", optional: true },
      lora_ranknum: { kind: "bool", optional: true },
      lora_eps: { kind: "float", optional: true },
      residual: { kind: "bool" },
    },
    infer: (ins, a) => {
      const [x, w, ...extras] = ins;
      const bad = first(f(x!, "x"), f(w!, "weight"), rank(w!, 2, "weight"));
      if (bad) return bad;
      const [outF, inF] = a.transposed ? [w!.shape[1]!, w!.shape[0]!] : [w!.shape[0]!, w!.shape[1]!];
      if (!dimEq(last(x!.shape), inF)) return `x ${formatType(x!)} does not fit weight ${formatType(w!)}`;
      if (a.lora_ranknum && (a.lora_scale === undefined || a.lora_eps === undefined)) return "lora_ranknum needs lora_scale and lora_eps";
      const want = (a.bias ? 1 : 0) + (a.lora_scale !== undefined ? (a.lora_ranknum ? 3 : 2) : 0) + (a.residual ? 1 : 0);
      if (extras.length !== want) return `linear_fused with these flags takes ${want} extra inputs, got ${extras.length}`;
      const out = [...x!.shape.slice(0, -1), outF];
      let i = 0;
      if (a.bias) {
        const b = extras[i++]!;
        if (b.shape.length !== 1 || !dimEq(b.shape[0]!, outF)) return `bias ${formatType(b)} does not match out features`;
      }
      if (a.lora_scale !== undefined) {
        const u = extras[i++]!;
        const B = extras[i++]!;
        if (B.shape.length !== 2 || !dimEq(B.shape[0]!, outF) || !dimEq(B.shape[1]!, last(u.shape))) return `lora B ${formatType(B)} does not fit u ${formatType(u)}`;
        if (!shapeEq(u.shape.slice(0, -1), x!.shape.slice(0, -1))) return `lora u ${formatType(u)} does not match x ${formatType(x!)}`;
        if (a.lora_ranknum) {
          const n = extras[i++]!;
          if (n.dtype !== "f32" || n.shape.length !== 1 || n.shape[0] !== 1) return `ranknum ${formatType(n)} must be f32[1]`;
        }
      }
      if (a.residual) {
        const r = extras[i++]!;
        if (!shapeEq(r.shape, out)) return `residual ${formatType(r)} must have the output's shape`;
      }
      return [{ dtype: "f32", shape: out }];
    },
  }),
};
