/**
 * Gradient rules, one per differentiable op, kept beside the op tables: given the gradients of an
 * op's outputs and which inputs need one, a rule appends the backward ops that compute them and
 * returns one gradient value per input slot (undefined where none was asked for). Rules only emit
 * what is asked: a frozen weight gets no weight gradient, the first trainable layer no dx.
 * What a rule reads from the forward graph is what backward must keep alive (autodiff records it).
 */
import type { GraphBuilder } from "./builder.js";
import type { Op } from "./graph.js";
import { dimAdd, shapeEq, type Dim, type TensorType } from "./shape.js";
import { DECODE_OPS } from "./ops-decode.js";

export interface GradContext {
  b: GraphBuilder;
  op: Op;
  /** Gradient of each output; undefined where that output receives none. */
  dys: (string | undefined)[];
  /** Per input slot: does training need its gradient? */
  needs: boolean[];
  /** A fresh value name for the gradient contribution toward input slot `slot`. */
  name(slot: number): string;
}

export type GradRule = (c: GradContext) => (string | undefined)[];

const typeIn = (c: GradContext, slot: number): TensorType => c.b.typeOf(c.op.inputs[slot]!);

/** dy itself when the shapes agree, else dy summed down to the input's (broadcast) shape. */
function reduceTo(c: GradContext, slot: number, dy: string): string {
  const want = typeIn(c, slot).shape;
  if (shapeEq(c.b.typeOf(dy).shape, want)) return dy;
  return c.b.op("sum_to_shape", c.op.module, [dy], { shape: want }, c.name(slot));
}

/** The single output's gradient (rules of single-output ops). */
const dy0 = (c: GradContext): string => {
  const d = c.dys[0];
  if (d === undefined) throw new Error(`${c.op.op}: no output gradient`);
  return d;
};

/** One backward op with a single output toward slot 0. */
const simple =
  (kind: string, inputs: (c: GradContext) => string[], attrs: (c: GradContext) => Record<string, unknown> = () => ({})): GradRule =>
  (c) => [c.needs[0] ? c.b.op(kind, c.op.module, inputs(c), attrs(c) as Op["attrs"], c.name(0)) : undefined];

const fromInput = (kind: string): GradRule => simple(kind, (c) => [c.op.inputs[0]!, dy0(c)]);
const fromOutput = (kind: string): GradRule => simple(kind, (c) => [c.op.outputs[0]!.name, dy0(c)]);

/** Multi-output backward op whose outputs are the requested gradients in slot order. */
function multi(c: GradContext, kind: string, inputs: string[], attrs: Op["attrs"], slots: number[]): (string | undefined)[] {
  const want = slots.filter((s) => c.needs[s]);
  const outs = c.b.opN(kind, c.op.module, inputs, attrs, want.map((s) => c.name(s)));
  const res: (string | undefined)[] = c.op.inputs.map(() => undefined);
  want.forEach((s, i) => (res[s] = outs[i]));
  return res;
}

export const GRAD_RULES: Readonly<Record<string, GradRule>> = {
  embedding: (c) => {
    const t = typeIn(c, 1);
    const transposed = c.op.attrs["transposed"] === true;
    const rows = t.shape[transposed ? 1 : 0] as number;
    return [
      undefined,
      c.needs[1]
        ? c.b.op("embedding_grad", c.op.module, [c.op.inputs[0]!, dy0(c)], { rows, ...(transposed ? { transposed } : {}) }, c.name(1))
        : undefined,
    ];
  },

  linear: (c) => {
    const [x, w] = c.op.inputs as [string, string];
    const dy = dy0(c);
    const tr: Op["attrs"] = c.op.attrs["transposed"] === true ? { transposed: true } : {};
    return [
      c.needs[0] ? c.b.op("linear_grad_input", c.op.module, [dy, w], tr, c.name(0)) : undefined,
      c.needs[1] ? c.b.op("linear_grad_weight", c.op.module, [x, dy], tr, c.name(1)) : undefined,
      c.needs[2] ? c.b.op("sum_to_shape", c.op.module, [dy], { shape: typeIn(c, 2).shape }, c.name(2)) : undefined,
    ];
  },

  add: (c) => [0, 1].map((s) => (c.needs[s] ? reduceTo(c, s, dy0(c)) : undefined)),

  mul: (c) =>
    [0, 1].map((s) => {
      if (!c.needs[s]) return undefined;
      const other = c.op.inputs[1 - s]!;
      const t = c.b.op("mul", c.op.module, [dy0(c), other], {}, c.name(s));
      return reduceTo(c, s, t);
    }),

  scale: simple("scale", (c) => [dy0(c)], (c) => ({ factor: c.op.attrs["factor"] })),

  rmsnorm: (c) =>
    multi(c, "rmsnorm_backward", [c.op.inputs[0]!, c.op.inputs[1]!, dy0(c)], { eps: c.op.attrs["eps"]!, dx: !!c.needs[0], dw: !!c.needs[1] }, [0, 1]),

  layernorm: (c) =>
    multi(
      c,
      "layernorm_backward",
      [c.op.inputs[0]!, c.op.inputs[1]!, dy0(c)],
      { eps: c.op.attrs["eps"]!, dx: !!c.needs[0], dw: !!c.needs[1], db: !!c.needs[2] },
      [0, 1, 2],
    ),

  rope: (c) => [
    c.needs[0]
      ? c.b.op("rope_backward", c.op.module, [dy0(c), c.op.inputs[1]!], { mode: c.op.attrs["mode"]!, rotary_dim: c.op.attrs["rotary_dim"]!, theta: c.op.attrs["theta"]! }, c.name(0))
      : undefined,
    undefined,
  ],

  attention: (c) => {
    const ins = c.op.inputs;
    const prefix = ins.length === 5 ? [ins[3]!, ins[4]!] : [];
    const outs = c.b.opN(
      "attention_backward",
      c.op.module,
      [ins[0]!, ins[1]!, ins[2]!, c.op.outputs[0]!.name, dy0(c), ...prefix],
      { causal: c.op.attrs["causal"]!, scale: c.op.attrs["scale"]! },
      ins.map((_, s) => c.name(s)),
    );
    return outs.map((o, s) => (c.needs[s] ? o : undefined));
  },

  reshape: simple("reshape", (c) => [dy0(c)], (c) => ({ shape: typeIn(c, 0).shape })),
  split_heads: simple("merge_heads", (c) => [dy0(c)]),
  merge_heads: simple("split_heads", (c) => [dy0(c)], (c) => ({ heads: typeIn(c, 0).shape.at(-2) })),

  split: (c) => {
    if (!c.needs[0]) return [undefined];
    const parts = c.op.outputs.map((o, i) =>
      c.dys[i] ?? c.b.op("full", c.op.module, [], { shape: o.shape, value: 0, dtype: "f32" }, c.b.fresh(`grad.${o.name}.zero`)),
    );
    return [c.b.op("concat", c.op.module, parts, { axis: c.op.attrs["axis"]! }, c.name(0))];
  },

  slice: simple("slice_backward", (c) => [dy0(c)], (c) => {
    const t = typeIn(c, 0);
    const axis = c.op.attrs["axis"] as number;
    return { axis, start: c.op.attrs["start"], length: t.shape[axis < 0 ? axis + t.shape.length : axis] };
  }),

  concat: (c) => {
    const axis = c.op.attrs["axis"] as number;
    let at: Dim = 0;
    return c.op.inputs.map((v, s) => {
      const t = c.b.typeOf(v);
      const len = t.shape[axis < 0 ? axis + t.shape.length : axis]!;
      const start = at;
      at = dimAdd(at, len);
      if (!c.needs[s]) return undefined;
      return c.b.op("slice", c.op.module, [dy0(c)], { axis, start, end: at }, c.name(s));
    });
  },

  broadcast: (c) => [c.needs[0] ? reduceTo(c, 0, dy0(c)) : undefined],

  silu: fromInput("silu_backward"),
  gelu_tanh: fromInput("gelu_tanh_backward"),
  gelu: fromInput("gelu_backward"),
  relu: fromInput("relu_backward"),
  tanh: fromOutput("tanh_backward"),
  sigmoid: fromOutput("sigmoid_backward"),
  swiglu: fromInput("swiglu_backward"),

  // Linear in x; ranknum is a frozen constant of the method and gets no gradient.
  rank_scale: (c) => [
    c.needs[0] ? c.b.op("rank_scale", c.op.module, [dy0(c), c.op.inputs[1]!], { ...c.op.attrs }, c.name(0)) : undefined,
    undefined,
  ],

  // The same stream regenerates the same mask: dropout's gradient is dropout of dy.
  dropout: simple("dropout", (c) => [dy0(c)], (c) => ({ p: c.op.attrs["p"], stream: c.op.attrs["stream"] })),

  mean_seq: simple("mean_seq_backward", (c) => [dy0(c)], (c) => ({ length: typeIn(c, 0).shape[1] })),

  cross_entropy: (c) => [
    c.needs[0]
      ? c.b.op("cross_entropy_backward", c.op.module, [c.op.inputs[0]!, c.op.inputs[1]!, dy0(c)], { ignore_index: c.op.attrs["ignore_index"]! }, c.name(0))
      : undefined,
    undefined,
  ],

  adalora_orth_reg: (c) => {
    const outs = c.b.opN("adalora_orth_reg_backward", c.op.module, [dy0(c), ...c.op.inputs], { kinds: c.op.attrs["kinds"]! }, c.op.inputs.map((_, s) => c.name(s)));
    return outs.map((o, s) => (c.needs[s] ? o : undefined));
  },
};

/** Ops with no inputs to differentiate, and the decode-step ops, which only inference graphs hold. */
export const NO_GRAD_OPS: ReadonlySet<string> = new Set(["full", "offset", ...Object.keys(DECODE_OPS)]);
