/**
 * Backward ops: what the autodiff pass emits. Each is the gradient of a forward op toward the
 * inputs training needs; the rules that emit them live in grad.ts. Backward graphs also reuse
 * forward ops where the gradient is one (add, scale, mul, reshape, dropout with the same stream).
 * Statistics a kernel would keep (rstd, the attention log-sum-exp) are not IR values: the backward
 * op reads the forward input and recomputes them, so only the inputs listed here must be saved.
 */
import { defineOp, type OpDef } from "./opdef.js";
import { f, first, last, rank } from "./ops-util.js";
import { broadcastShapes, dimEq, formatShape, formatType, normDim, shapeEq, type Dim, type TensorType } from "./shape.js";

const sameAs = (x: TensorType, dy: TensorType, what: string): string | undefined =>
  shapeEq(x.shape, dy.shape) ? undefined : `${what} ${formatType(x)} and dy ${formatType(dy)} differ in shape`;

/** d(activation)/dx from the kept input x (or output y) and the incoming gradient. */
const unaryBackward = (doc: string, kept: "x" | "y"): OpDef =>
  defineOp({
    doc,
    inputs: [kept, "dy"],
    attrs: {},
    infer: ([x, dy]) => first(f(x!, kept), f(dy!, "dy"), sameAs(x!, dy!, kept)) ?? [{ dtype: "f32", shape: dy!.shape }],
  });

/** A norm backward's `add`: only with dx, of x's shape. */
const normAdd = (add: TensorType | undefined, x: TensorType, dx: boolean): string | undefined =>
  add === undefined ? undefined : !dx ? "add needs dx" : (f(add, "add") ?? sameAs(add, x, "add"));

/** Output list of a multi-gradient op: one f32 output per requested gradient, in input order. */
function wanted(pairs: [boolean | undefined, TensorType][]): TensorType[] | string {
  const out = pairs.filter(([w]) => w === true).map(([, t]) => ({ dtype: "f32" as const, shape: t.shape }));
  return out.length ? out : "no gradient requested";
}

export const BACKWARD_OPS: Readonly<Record<string, OpDef>> = {
  linear_grad_input: defineOp({
    doc: "dx = alpha·dy·W (dy·Wᵀ when transposed): the gradient of linear toward x; alpha (default 1) is a scale the fuse pass folds in",
    inputs: ["dy", "weight"],
    attrs: { transposed: { kind: "bool", optional: true }, alpha: { kind: "float", optional: true } },
    infer: ([dy, w], a) => {
      const bad = first(f(dy!, "dy"), f(w!, "weight"), rank(w!, 2, "weight"));
      if (bad) return bad;
      const [inF, outF] = a.transposed ? [w!.shape[0]!, w!.shape[1]!] : [w!.shape[1]!, w!.shape[0]!];
      if (!dimEq(last(dy!.shape), outF)) return `dy ${formatType(dy!)} does not fit weight ${formatType(w!)}`;
      return [{ dtype: "f32", shape: [...dy!.shape.slice(0, -1), inF] }];
    },
  }),

  linear_grad_weight: defineOp({
    doc: "dW = alpha·dyᵀ·x summed over every leading axis, in the weight's layout ([out,in], or [in,out] when transposed); alpha defaults to 1",
    inputs: ["x", "dy"],
    attrs: { transposed: { kind: "bool", optional: true }, alpha: { kind: "float", optional: true } },
    infer: ([x, dy], a) => {
      const bad = first(f(x!, "x"), f(dy!, "dy"));
      if (bad) return bad;
      if (x!.shape.length !== dy!.shape.length || !x!.shape.slice(0, -1).every((d, i) => dimEq(d, dy!.shape[i]!)))
        return `x ${formatType(x!)} and dy ${formatType(dy!)} differ outside the last axis`;
      const inF = last(x!.shape);
      const outF = last(dy!.shape);
      if (typeof inF !== "number" || typeof outF !== "number") return "feature axes must be numeric";
      return [{ dtype: "f32", shape: a.transposed ? [inF, outF] : [outF, inF] }];
    },
  }),

  sum_to_shape: defineOp({
    doc: "sum x over the axes NumPy broadcasting added or stretched, down to shape (bias and broadcast gradients)",
    inputs: ["x"],
    attrs: { shape: { kind: "dims" } },
    infer: ([x], a) => {
      const bad = f(x!, "x");
      if (bad) return bad;
      const s = broadcastShapes(a.shape, x!.shape);
      if (typeof s === "string" || !shapeEq(s, x!.shape)) return `${formatType(x!)} is not a broadcast of ${formatShape(a.shape)}`;
      return [{ dtype: "f32", shape: a.shape.map(normDim) }];
    },
  }),

  add_grad: defineOp({
    doc: "sum of gradient contributions of one value (a value read by several ops)",
    inputs: ["xs..."],
    attrs: {},
    infer: (xs) => {
      for (const [i, x] of xs.entries()) {
        const bad = f(x, `xs[${i}]`) ?? sameAs(x, xs[0]!, `xs[${i}]`);
        if (bad) return bad;
      }
      return [{ dtype: "f32", shape: xs[0]!.shape }];
    },
  }),

  embedding_grad: defineOp({
    doc: "scatter-add of dy [...ids, D] into a table of `rows` rows ([rows,D], or [D,rows] when transposed)",
    inputs: ["ids", "dy"],
    attrs: { rows: { kind: "int" }, transposed: { kind: "bool", optional: true } },
    infer: ([ids, dy], a) => {
      const bad = first(ids!.dtype === "i32" ? undefined : `ids must be i32, got ${formatType(ids!)}`, f(dy!, "dy"));
      if (bad) return bad;
      if (dy!.shape.length !== ids!.shape.length + 1 || !ids!.shape.every((d, i) => dimEq(d, dy!.shape[i]!)))
        return `dy ${formatType(dy!)} does not fit ids ${formatType(ids!)}`;
      const d = last(dy!.shape);
      if (typeof d !== "number" || a.rows <= 0) return "table dimensions must be numeric and positive";
      return [{ dtype: "f32", shape: a.transposed ? [d, a.rows] : [a.rows, d] }];
    },
  }),

  rmsnorm_backward: defineOp({
    doc: "gradients of rmsnorm toward x and/or weight (outputs in that order, as requested); rstd is recomputed from x; `add` (the fuse pass's: x's other gradients) is added to dx",
    inputs: ["x", "weight", "dy", "add?"],
    attrs: { eps: { kind: "float" }, dx: { kind: "bool" }, dw: { kind: "bool" } },
    infer: ([x, w, dy, add], a) =>
      first(f(x!, "x"), f(w!, "weight"), f(dy!, "dy"), rank(w!, 1, "weight"), sameAs(x!, dy!, "x"), normAdd(add, x!, a.dx)) ??
      wanted([
        [a.dx, x!],
        [a.dw, w!],
      ]),
  }),

  layernorm_backward: defineOp({
    doc: "gradients of layernorm toward x, weight and/or bias (outputs in that order, as requested); mean and rstd are recomputed; `add` is added to dx as for rmsnorm_backward",
    inputs: ["x", "weight", "dy", "add?"],
    attrs: { eps: { kind: "float" }, dx: { kind: "bool" }, dw: { kind: "bool" }, db: { kind: "bool" } },
    infer: ([x, w, dy, add], a) =>
      first(f(x!, "x"), f(w!, "weight"), f(dy!, "dy"), rank(w!, 1, "weight"), sameAs(x!, dy!, "x"), normAdd(add, x!, a.dx)) ??
      wanted([
        [a.dx, x!],
        [a.dw, w!],
        [a.db, w!],
      ]),
  }),

  rope_backward: defineOp({
    doc: "the rotation of rope by the negated angle: dx from dy [B,T,H,hd] and the positions",
    inputs: ["dy", "positions"],
    attrs: { mode: { kind: ["half", "interleaved"] }, rotary_dim: { kind: "int" }, theta: { kind: "float" } },
    infer: ([dy, pos]) => {
      const bad = first(f(dy!, "dy"), rank(dy!, 4, "dy"), pos!.dtype === "i32" ? undefined : `positions must be i32`);
      return bad ?? [{ dtype: "f32", shape: dy!.shape }];
    },
  }),

  attention_backward: defineOp({
    doc: "gradients of attention toward q, k, v (and prefix_k, prefix_v when given) from the saved operands and output; probabilities are recomputed",
    inputs: ["q", "k", "v", "out", "dout", "prefix_k?", "prefix_v?"],
    attrs: { causal: { kind: "bool" }, scale: { kind: "float" } },
    infer: ([q, k, v, out, dout, pk, pv]) => {
      const bad = first(f(q!, "q"), f(k!, "k"), f(v!, "v"), f(dout!, "dout"), sameAs(out!, dout!, "out"), rank(q!, 4, "q"));
      if (bad) return bad;
      if (!dimEq(dout!.shape[0]!, q!.shape[0]!) || !dimEq(dout!.shape[1]!, q!.shape[1]!)) return `dout ${formatType(dout!)} does not fit q ${formatType(q!)}`;
      if (!!pk !== !!pv) return "prefix_k and prefix_v go together";
      const ts = [q!, k!, v!, ...(pk && pv ? [pk, pv] : [])];
      return ts.map((t) => ({ dtype: "f32" as const, shape: t.shape }));
    },
  }),

  cross_entropy_backward: defineOp({
    doc: "dlogits = dloss/count · (softmax(logits) − onehot(shifted label)) on counted rows, 0 elsewhere",
    inputs: ["logits", "labels", "dloss"],
    attrs: { ignore_index: { kind: "int" } },
    infer: ([lg, lb, dl]) => {
      const bad = first(f(lg!, "logits"), rank(lg!, 3, "logits"), lb!.dtype === "i32" ? undefined : "labels must be i32", f(dl!, "dloss"), rank(dl!, 0, "dloss"));
      return bad ?? [{ dtype: "f32", shape: lg!.shape }];
    },
  }),

  silu_backward: unaryBackward("dy · σ(x)(1 + x(1 − σ(x)))", "x"),
  gelu_tanh_backward: unaryBackward("dy · d/dx gelu_tanh(x)", "x"),
  gelu_backward: unaryBackward("dy · (Φ(x) + x·φ(x)) for the exact (erf) gelu", "x"),
  relu_backward: unaryBackward("dy · [x > 0]", "x"),
  tanh_backward: unaryBackward("dy · (1 − y²), from the forward output y", "y"),
  sigmoid_backward: unaryBackward("dy · y(1 − y), from the forward output y", "y"),

  swiglu_backward: defineOp({
    doc: "gradient of swiglu toward its fused input x [...,2F] from dy [...,F]",
    inputs: ["x", "dy"],
    attrs: {},
    infer: ([x, dy]) => {
      const bad = first(f(x!, "x"), f(dy!, "dy"));
      if (bad) return bad;
      const d = last(x!.shape);
      if (typeof d !== "number" || !dimEq(last(dy!.shape), d / 2)) return `dy ${formatType(dy!)} does not fit x ${formatType(x!)}`;
      return [{ dtype: "f32", shape: x!.shape }];
    },
  }),

  slice_backward: defineOp({
    doc: "dy placed at [start, start+len) of a zero tensor whose axis has `length` entries (the gradient of slice)",
    inputs: ["dy"],
    attrs: { axis: { kind: "int" }, start: { kind: "dim" }, length: { kind: "dim" } },
    infer: ([dy], a) => {
      const bad = f(dy!, "dy");
      if (bad) return bad;
      const r = dy!.shape.length;
      const ax = a.axis < 0 ? a.axis + r : a.axis;
      if (ax < 0 || ax >= r) return `axis ${a.axis} out of range for ${formatType(dy!)}`;
      return [{ dtype: "f32", shape: dy!.shape.map((d, i): Dim => (i === ax ? normDim(a.length) : d)) }];
    },
  }),

  mean_seq_backward: defineOp({
    doc: "dy [B,...] spread over `length` sequence positions and divided by it: [B,length,...]",
    inputs: ["dy"],
    attrs: { length: { kind: "dim" } },
    infer: ([dy], a) => {
      const bad = first(f(dy!, "dy"), dy!.shape.length ? undefined : "dy must not be a scalar");
      return bad ?? [{ dtype: "f32", shape: [dy!.shape[0]!, normDim(a.length), ...dy!.shape.slice(1)] }];
    },
  }),
};
