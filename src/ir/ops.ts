/**
 * The one table of IR ops. Each entry is its inputs, typed attributes, a shape rule and one line of
 * doc; adding an op is adding one entry to the table of its family (forward here, backward in
 * ops-backward.ts, optimizer in ops-optim.ts). Activation layouts are
 * batch-first, heads split out as their own axis: `[B,T,D]`, attention operands `[B,T,H,hd]`.
 */
import { arity, checkAttrs, defineOp, type Attrs, type InferResult, type OpDef } from "./opdef.js";
import { axisOf, checkHeadsAndPrefix, elementwise, f, first, last, rank, unary } from "./ops-util.js";
import { BACKWARD_OPS } from "./ops-backward.js";
import { OPTIMIZER_OPS } from "./ops-optim.js";
import { PEFT_OPS } from "./ops-peft.js";
import { FUSED_OPS } from "./ops-fused.js";
import { DECODE_OPS } from "./ops-decode.js";
import {
  broadcastShapes,
  dimAdd,
  dimEq,
  dimNegative,
  dimSub,
  elementKey,
  formatShape,
  formatType,
  isFloat,
  normDim,
  promote,
  type Dim,
  type Shape,
  type TensorType,
} from "./shape.js";

/** Forward ops: what model builders and method injection use. */
const FORWARD_OPS: Readonly<Record<string, OpDef>> = {
  embedding: defineOp({
    doc: "rows of table [V,D] (or columns of [D,V] when transposed) picked by i32 ids; output f32 [...ids, D]",
    inputs: ["ids", "table"],
    attrs: { transposed: { kind: "bool", optional: true } },
    infer: ([ids, table], a) => {
      const bad = first(
        ids!.dtype === "i32" ? undefined : `ids must be i32, got ${formatType(ids!)}`,
        f(table!, "table"),
        rank(table!, 2, "table"),
      );
      if (bad) return bad;
      const d = table!.shape[a.transposed ? 0 : 1] as Dim;
      return [{ dtype: "f32", shape: [...ids!.shape, d] }];
    },
  }),

  linear: defineOp({
    doc: "y = x·Wᵀ + b with W [out,in]; transposed: W stored [in,out] (GPT-2 Conv1D); bias [out] optional",
    inputs: ["x", "weight", "bias?"],
    attrs: { transposed: { kind: "bool", optional: true } },
    infer: ([x, w, b], a) => {
      const bad = first(f(x!, "x"), f(w!, "weight"), rank(w!, 2, "weight"), x!.shape.length ? undefined : "x must not be a scalar");
      if (bad) return bad;
      const [inF, outF] = a.transposed ? [w!.shape[0]!, w!.shape[1]!] : [w!.shape[1]!, w!.shape[0]!];
      if (!dimEq(last(x!.shape), inF))
        return `x ${formatType(x!)} does not fit weight ${formatType(w!)}${a.transposed ? " (transposed)" : ""}: in features ${inF}`;
      if (b) {
        const bb = first(f(b, "bias"), rank(b, 1, "bias"));
        if (bb) return bb;
        if (!dimEq(b.shape[0]!, outF)) return `bias ${formatType(b)} does not match out features ${outF}`;
      }
      const dtype = promote(x!.dtype, w!.dtype, ...(b ? [b.dtype] : []));
      return [{ dtype, shape: [...x!.shape.slice(0, -1), outF] }];
    },
  }),

  add: elementwise("a + b with NumPy broadcasting (trailing axes aligned)"),
  mul: elementwise("a ⊙ b with NumPy broadcasting (trailing axes aligned)"),

  scale: defineOp({
    doc: "x · factor for a compile-time constant factor",
    inputs: ["x"],
    attrs: { factor: { kind: "float" } },
    infer: ([x]) => f(x!, "x") ?? [{ dtype: x!.dtype, shape: x!.shape }],
  }),

  rmsnorm: defineOp({
    doc: "w ⊙ x / sqrt(mean(x², last axis) + eps), statistics in f32",
    inputs: ["x", "weight"],
    attrs: { eps: { kind: "float" } },
    infer: ([x, w]) => {
      const bad = first(f(x!, "x"), f(w!, "weight"), rank(w!, 1, "weight"));
      if (bad) return bad;
      if (!dimEq(w!.shape[0]!, last(x!.shape))) return `weight ${formatType(w!)} does not match x ${formatType(x!)}`;
      return [{ dtype: x!.dtype, shape: x!.shape }];
    },
  }),

  layernorm: defineOp({
    doc: "w ⊙ (x − mean) / sqrt(var + eps) + b over the last axis (biased variance)",
    inputs: ["x", "weight", "bias"],
    attrs: { eps: { kind: "float" } },
    infer: ([x, w, b]) => {
      const bad = first(f(x!, "x"), f(w!, "weight"), f(b!, "bias"), rank(w!, 1, "weight"), rank(b!, 1, "bias"));
      if (bad) return bad;
      if (!dimEq(w!.shape[0]!, last(x!.shape)) || !dimEq(b!.shape[0]!, last(x!.shape)))
        return `weight ${formatType(w!)} / bias ${formatType(b!)} do not match x ${formatType(x!)}`;
      return [{ dtype: x!.dtype, shape: x!.shape }];
    },
  }),

  rope: defineOp({
    doc: "rotary embedding of the first rotary_dim channels of x [B,T,H,hd] at i32 positions [B,T]; half: llama rotate-half, interleaved: pairs (2i,2i+1); freq_i = theta^(-2i/rotary_dim)",
    inputs: ["x", "positions"],
    attrs: { mode: { kind: ["half", "interleaved"] }, rotary_dim: { kind: "int" }, theta: { kind: "float" } },
    infer: ([x, pos], a) => {
      const bad = first(f(x!, "x"), rank(x!, 4, "x"), pos!.dtype === "i32" ? undefined : `positions must be i32, got ${formatType(pos!)}`);
      if (bad) return bad;
      if (pos!.shape.length !== 2 || !dimEq(pos!.shape[0]!, x!.shape[0]!) || !dimEq(pos!.shape[1]!, x!.shape[1]!))
        return `positions ${formatType(pos!)} must be [${String(x!.shape[0])},${String(x!.shape[1])}]`;
      const hd = x!.shape[3]!;
      if (a.rotary_dim <= 0 || a.rotary_dim % 2 !== 0) return `rotary_dim ${a.rotary_dim} must be even and positive`;
      if (typeof hd === "number" && a.rotary_dim > hd) return `rotary_dim ${a.rotary_dim} exceeds head dim ${hd}`;
      if (a.theta <= 0) return `theta must be positive`;
      return [{ dtype: x!.dtype, shape: x!.shape }];
    },
  }),

  attention: defineOp({
    doc: "softmax(scale·q·kᵀ [+causal mask])·v per head; q [B,T,Hq,hd], k/v [B,S,Hkv,hd], query head h reads kv head h/(Hq/Hkv); optional prefix_k/prefix_v [P,Hkv,hd] or [B,P,Hkv,hd] precede k/v, always visible, never rotated; causal aligns the last query with the last key",
    inputs: ["q", "k", "v", "prefix_k?", "prefix_v?"],
    attrs: { causal: { kind: "bool" }, scale: { kind: "float" } },
    infer: ([q, k, v, pk, pv]) => {
      const bad = first(f(q!, "q"), f(k!, "k"), f(v!, "v"), rank(q!, 4, "q"), rank(k!, 4, "k"), rank(v!, 4, "v"));
      if (bad) return bad;
      const [bq, , hq, hd] = q!.shape as [Dim, Dim, Dim, Dim];
      const [bk, s, hkv, hdk] = k!.shape as [Dim, Dim, Dim, Dim];
      if (!dimEq(bq, bk) || !dimEq(hd, hdk)) return `k ${formatType(k!)} does not fit q ${formatType(q!)}`;
      if (!dimEq(v!.shape[0]!, bk) || !dimEq(v!.shape[1]!, s) || !dimEq(v!.shape[2]!, hkv))
        return `v ${formatType(v!)} does not fit k ${formatType(k!)}`;
      const pre = checkHeadsAndPrefix(hq, { k: [hkv, hdk], v: [v!.shape[2]!, v!.shape[3]!] }, pk, pv, { ok: (d) => dimEq(d, bq), name: String(bq) });
      if (pre) return pre;
      return [{ dtype: promote(q!.dtype, k!.dtype, v!.dtype), shape: [bq, q!.shape[1]!, hq, v!.shape[3]!] }];
    },
  }),

  reshape: defineOp({
    doc: "same elements, new shape (row-major); element counts must agree for every B, T",
    inputs: ["x"],
    attrs: { shape: { kind: "dims" } },
    infer: ([x], a) => {
      if (elementKey(a.shape) !== elementKey(x!.shape))
        return `cannot reshape ${formatType(x!)} to ${formatShape(a.shape)}: element counts differ`;
      return [{ dtype: x!.dtype, shape: a.shape.map(normDim) }];
    },
  }),

  split_heads: defineOp({
    doc: "view the last axis as heads: [...,H·hd] -> [...,H,hd]; leading axes (B, T or T+P) pass through",
    inputs: ["x"],
    attrs: { heads: { kind: "int" } },
    infer: ([x], a) => {
      const d = last(x!.shape);
      if (x!.shape.length === 0) return "x must not be a scalar";
      if (a.heads <= 0 || typeof d !== "number" || d % a.heads !== 0)
        return `last axis of ${formatType(x!)} does not split into ${a.heads} heads`;
      return [{ dtype: x!.dtype, shape: [...x!.shape.slice(0, -1), a.heads, d / a.heads] }];
    },
  }),

  merge_heads: defineOp({
    doc: "inverse of split_heads: [...,H,hd] -> [...,H·hd]",
    inputs: ["x"],
    attrs: {},
    infer: ([x]) => {
      const [h, hd] = x!.shape.slice(-2);
      if (x!.shape.length < 2 || typeof h !== "number" || typeof hd !== "number")
        return `x ${formatType(x!)} must end in numeric [H,hd] axes`;
      return [{ dtype: x!.dtype, shape: [...x!.shape.slice(0, -2), h * hd] }];
    },
  }),

  split: defineOp({
    doc: "consecutive pieces of the given sizes along axis (fused qkv); one output per size",
    inputs: ["x"],
    attrs: { axis: { kind: "int" }, sizes: { kind: "ints" } },
    infer: ([x], a) => {
      const ax = axisOf(a.axis, x!.shape.length);
      if (ax === undefined) return `axis ${a.axis} out of range for ${formatType(x!)}`;
      if (a.sizes.length === 0 || a.sizes.some((n) => n <= 0)) return `sizes must be positive`;
      const total = a.sizes.reduce((p, n) => p + n, 0);
      if (!dimEq(x!.shape[ax]!, total)) return `sizes sum to ${total} but axis ${ax} of ${formatType(x!)} is ${String(x!.shape[ax])}`;
      return a.sizes.map((n) => ({ dtype: x!.dtype, shape: x!.shape.map((d, i) => (i === ax ? n : d)) }));
    },
  }),

  slice: defineOp({
    doc: "x[start:end) along axis; start and end may be symbolic (drop P virtual tokens: start P, end T+P)",
    inputs: ["x"],
    attrs: { axis: { kind: "int" }, start: { kind: "dim" }, end: { kind: "dim" } },
    infer: ([x], a) => {
      const ax = axisOf(a.axis, x!.shape.length);
      if (ax === undefined) return `axis ${a.axis} out of range for ${formatType(x!)}`;
      const len = dimSub(a.end, a.start);
      const rest = dimSub(x!.shape[ax]!, a.end);
      if (dimNegative(len) || dimNegative(rest) || dimNegative(a.start))
        return `slice [${String(a.start)}:${String(a.end)}) out of range for axis ${ax} of ${formatType(x!)}`;
      return [{ dtype: x!.dtype, shape: x!.shape.map((d, i) => (i === ax ? len : d)) }];
    },
  }),

  concat: defineOp({
    doc: "join along axis (prompt tuning prepends virtual tokens along T); other axes must agree",
    inputs: ["xs..."],
    attrs: { axis: { kind: "int" } },
    infer: (xs, a) => {
      const x0 = xs[0]!;
      const ax = axisOf(a.axis, x0.shape.length);
      if (ax === undefined) return `axis ${a.axis} out of range for ${formatType(x0)}`;
      let len: Dim = 0;
      for (const [i, x] of xs.entries()) {
        if (x.dtype !== x0.dtype) return `xs[${i}] ${formatType(x)} differs in dtype from xs[0] ${formatType(x0)}`;
        if (x.shape.length !== x0.shape.length || x.shape.some((d, j) => j !== ax && !dimEq(d, x0.shape[j]!)))
          return `xs[${i}] ${formatType(x)} does not fit xs[0] ${formatType(x0)} outside axis ${ax}`;
        len = dimAdd(len, x.shape[ax]!);
      }
      return [{ dtype: x0.dtype, shape: x0.shape.map((d, i) => (i === ax ? len : d)) }];
    },
  }),

  broadcast: defineOp({
    doc: "repeat x to the given shape under NumPy broadcasting (one prompt for every batch row)",
    inputs: ["x"],
    attrs: { shape: { kind: "dims" } },
    infer: ([x], a) => {
      const s = broadcastShapes(x!.shape, a.shape);
      if (typeof s === "string" || s.length !== a.shape.length || s.some((d, i) => !dimEq(d, a.shape[i]!)))
        return `cannot broadcast ${formatType(x!)} to ${formatShape(a.shape)}`;
      return [{ dtype: x!.dtype, shape: a.shape.map(normDim) }];
    },
  }),

  full: defineOp({
    doc: "a tensor filled with one value (label padding of -100 for virtual tokens)",
    inputs: [],
    attrs: { shape: { kind: "dims" }, value: { kind: "float" }, dtype: { kind: ["f32", "f16", "i32"] } },
    infer: (_, a) => {
      if (a.dtype === "i32" && !Number.isInteger(a.value)) return `value ${a.value} is not an integer`;
      return [{ dtype: a.dtype, shape: a.shape.map(normDim) }];
    },
  }),

  offset: defineOp({
    doc: "x + by for i32 x (real tokens' positions after P prefix keys/values that the model numbers first)",
    inputs: ["x"],
    attrs: { by: { kind: "int" } },
    infer: ([x]) => (x!.dtype === "i32" ? [{ dtype: "i32", shape: x!.shape }] : `x must be i32, got ${formatType(x!)}`),
  }),

  silu: unary("x · sigmoid(x)"),
  gelu_tanh: unary("0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) (GPT-2 gelu_new)"),
  relu: unary("max(x, 0)"),
  tanh: unary("tanh(x)"),
  sigmoid: unary("1 / (1 + exp(−x))"),

  swiglu: defineOp({
    doc: "silu(first half of the last axis) ⊙ second half (ChatGLM2 dense_h_to_4h output)",
    inputs: ["x"],
    attrs: {},
    infer: ([x]) => {
      const bad = f(x!, "x");
      if (bad) return bad;
      const d = last(x!.shape);
      if (typeof d !== "number" || d % 2 !== 0) return `last axis of ${formatType(x!)} must be even`;
      return [{ dtype: x!.dtype, shape: [...x!.shape.slice(0, -1), d / 2] }];
    },
  }),

  dropout: defineOp({
    doc: "zero each element with probability p and scale the rest by 1/(1−p); the mask comes from (seed, stream, step)",
    inputs: ["x"],
    attrs: { p: { kind: "float" }, stream: { kind: "string" } },
    infer: ([x], a) => {
      if (a.p < 0 || a.p >= 1) return `p must be in [0, 1), got ${a.p}`;
      return f(x!, "x") ?? [{ dtype: x!.dtype, shape: x!.shape }];
    },
  }),

  mean_seq: defineOp({
    doc: "mean over the sequence axis: [B,T,...] -> [B,...]",
    inputs: ["x"],
    attrs: {},
    infer: ([x]) => {
      const bad = f(x!, "x");
      if (bad) return bad;
      if (x!.shape.length < 2) return `x must have rank 2 or more, got ${formatType(x!)}`;
      return [{ dtype: x!.dtype, shape: [x!.shape[0]!, ...x!.shape.slice(2)] }];
    },
  }),

  cross_entropy: defineOp({
    doc: "mean over counted tokens of −log softmax(logits[b,t])[labels[b,t+1]] (shifted inside); labels equal to ignore_index are not counted; f32 scalar",
    inputs: ["logits", "labels"],
    attrs: { ignore_index: { kind: "int" } },
    infer: ([lg, lb]) => {
      const bad = first(f(lg!, "logits"), rank(lg!, 3, "logits"), lb!.dtype === "i32" ? undefined : `labels must be i32, got ${formatType(lb!)}`);
      if (bad) return bad;
      if (lb!.shape.length !== 2 || !dimEq(lb!.shape[0]!, lg!.shape[0]!) || !dimEq(lb!.shape[1]!, lg!.shape[1]!))
        return `labels ${formatType(lb!)} must be [${String(lg!.shape[0])},${String(lg!.shape[1])}] to fit logits ${formatType(lg!)}`;
      return [{ dtype: "f32", shape: [] }];
    },
  }),
};

/**
 * The whole table. Backward ops (autodiff) and optimizer ops live in their own files so each family
 * reads as one list; a name may appear once across them.
 */
export const OPS: Readonly<Record<string, OpDef>> = mergeTables(FORWARD_OPS, PEFT_OPS, BACKWARD_OPS, OPTIMIZER_OPS, FUSED_OPS, DECODE_OPS);

function mergeTables(...tables: Readonly<Record<string, OpDef>>[]): Readonly<Record<string, OpDef>> {
  const all: Record<string, OpDef> = {};
  for (const t of tables) {
    for (const [name, def] of Object.entries(t)) {
      if (name in all) throw new Error(`op '${name}' is defined twice`);
      all[name] = def;
    }
  }
  return all;
}

export function opDef(name: string): OpDef | undefined {
  return Object.prototype.hasOwnProperty.call(OPS, name) ? OPS[name] : undefined;
}

/** Output types of one op application, or the reason it is ill-typed (unknown op, arity, attributes, shapes). */
export function inferOp(name: string, inputs: TensorType[], attrs: Attrs): InferResult {
  const def = opDef(name);
  if (!def) return `unknown op '${name}'`;
  const { min, max } = arity(def);
  if (inputs.length < min || inputs.length > max) {
    const want = max === Infinity ? `at least ${min}` : min === max ? `${min}` : `${min} to ${max}`;
    return `takes ${want} inputs (${def.inputs.join(", ")}), got ${inputs.length}`;
  }
  const bad = checkAttrs(def, attrs);
  if (bad) return bad;
  return def.infer(inputs, attrs);
}
