/**
 * Every differentiable op's gradient rule, run through the reference executor in f64, against
 * central finite differences of L = Σ y ⊙ dy for a fixed random dy. Each case is one op on small
 * odd shapes, with every float input a trainable parameter.
 */
import { describe, expect, it } from "vitest";
import { GraphBuilder } from "../../src/ir/builder.js";
import { GRAD_RULES, NO_GRAD_OPS } from "../../src/ir/grad.js";
import type { Attrs } from "../../src/ir/opdef.js";
import { OPS } from "../../src/ir/ops.js";
import { BACKWARD_OPS } from "../../src/ir/ops-backward.js";
import { OPTIMIZER_OPS } from "../../src/ir/ops-optim.js";
import { FUSED_OPS } from "../../src/ir/ops-fused.js";
import { verify } from "../../src/ir/verify.js";
import { differentiate } from "../../src/passes/autodiff.js";
import { KERNELS, runGraph } from "../../src/runtime/reference/executor.js";
import { fdAt, pick, Rand, worst } from "./helpers.js";

type In = { name: string; shape: number[]; int?: number; trainable?: boolean; values?: number[] };

interface Case {
  label: string;
  op: string;
  ins: In[];
  attrs?: Attrs;
  /** Which output to differentiate (multi-output ops). */
  out?: number;
  outputs?: number;
}

const f = (name: string, ...shape: number[]): In => ({ name, shape });
const ids = (name: string, n: number, ...shape: number[]): In => ({ name, shape, int: n });

const CASES: Case[] = [
  { label: "embedding", op: "embedding", ins: [ids("ids", 7, 2, 3), f("table", 7, 4)] },
  { label: "embedding transposed", op: "embedding", ins: [ids("ids", 7, 2, 3), f("table", 4, 7)], attrs: { transposed: true } },
  { label: "linear with bias", op: "linear", ins: [f("x", 2, 3, 4), f("w", 5, 4), f("b", 5)] },
  { label: "linear transposed (Conv1D)", op: "linear", ins: [f("x", 3, 4), f("w", 4, 5)], attrs: { transposed: true } },
  { label: "add with broadcast", op: "add", ins: [f("a", 2, 3, 4), f("b", 4)] },
  { label: "mul with broadcast", op: "mul", ins: [f("a", 2, 3, 4), f("b", 3, 1)] },
  { label: "mul of a value by itself", op: "mul", ins: [f("a", 2, 3), f("a", 2, 3)] },
  { label: "scale", op: "scale", ins: [f("x", 2, 3)], attrs: { factor: -1.7 } },
  { label: "rmsnorm", op: "rmsnorm", ins: [f("x", 2, 3, 5), f("w", 5)], attrs: { eps: 1e-5 } },
  { label: "layernorm", op: "layernorm", ins: [f("x", 2, 3, 5), f("w", 5), f("b", 5)], attrs: { eps: 1e-5 } },
  { label: "rope half", op: "rope", ins: [f("x", 2, 3, 2, 4), ids("pos", 9, 2, 3)], attrs: { mode: "half", rotary_dim: 4, theta: 10000 } },
  { label: "rope interleaved partial", op: "rope", ins: [f("x", 2, 3, 2, 4), ids("pos", 9, 2, 3)], attrs: { mode: "interleaved", rotary_dim: 2, theta: 100 } },
  { label: "attention grouped causal", op: "attention", ins: [f("q", 2, 3, 4, 4), f("k", 2, 3, 2, 4), f("v", 2, 3, 2, 4)], attrs: { causal: true, scale: 0.5 } },
  {
    label: "attention with a shared prefix",
    op: "attention",
    ins: [f("q", 2, 3, 2, 4), f("k", 2, 3, 2, 4), f("v", 2, 3, 2, 4), f("pk", 2, 2, 4), f("pv", 2, 2, 4)],
    attrs: { causal: true, scale: 0.5 },
  },
  {
    label: "attention with a per-row prefix",
    op: "attention",
    ins: [f("q", 2, 3, 2, 4), f("k", 2, 3, 1, 4), f("v", 2, 3, 1, 4), f("pk", 2, 2, 1, 4), f("pv", 2, 2, 1, 4)],
    attrs: { causal: false, scale: 0.4 },
  },
  { label: "reshape", op: "reshape", ins: [f("x", 2, 6)], attrs: { shape: [3, 4] } },
  { label: "split_heads", op: "split_heads", ins: [f("x", 2, 3, 8)], attrs: { heads: 2 } },
  { label: "merge_heads", op: "merge_heads", ins: [f("x", 2, 3, 2, 4)] },
  { label: "split (one output read)", op: "split", ins: [f("x", 2, 3, 6)], attrs: { axis: -1, sizes: [2, 4] }, out: 1, outputs: 2 },
  { label: "slice", op: "slice", ins: [f("x", 2, 5, 3)], attrs: { axis: 1, start: 1, end: 4 } },
  { label: "concat", op: "concat", ins: [f("a", 2, 2, 3), f("b", 2, 3, 3)], attrs: { axis: 1 } },
  { label: "broadcast", op: "broadcast", ins: [f("x", 1, 3)], attrs: { shape: [2, 4, 3] } },
  { label: "silu", op: "silu", ins: [f("x", 2, 3)] },
  { label: "gelu_tanh", op: "gelu_tanh", ins: [f("x", 2, 3)] },
  { label: "gelu", op: "gelu", ins: [f("x", 2, 3)] },
  { label: "relu", op: "relu", ins: [f("x", 2, 3)] },
  { label: "tanh", op: "tanh", ins: [f("x", 2, 3)] },
  { label: "sigmoid", op: "sigmoid", ins: [f("x", 2, 3)] },
  { label: "swiglu", op: "swiglu", ins: [f("x", 3, 6)] },
  { label: "dropout", op: "dropout", ins: [f("x", 4, 5)], attrs: { p: 0.3, stream: "drop" } },
  { label: "mean_seq", op: "mean_seq", ins: [f("x", 2, 3, 4)] },
  { label: "cross_entropy", op: "cross_entropy", ins: [f("logits", 2, 4, 5), { name: "labels", shape: [2, 4], int: 5, values: [1, 2, -100, 4, 0, 3, 3, -100] }], attrs: { ignore_index: -100 } },
  { label: "rank_scale", op: "rank_scale", ins: [f("x", 2, 3), { name: "ranknum", shape: [1], trainable: false, values: [3] }], attrs: { factor: 2, eps: 1e-5 } },
  { label: "adalora_orth_reg", op: "adalora_orth_reg", ins: [f("A", 3, 5), f("B", 4, 3)], attrs: { kinds: [0, 1] } },
];

function build(c: Case, r: Rand) {
  const b = new GraphBuilder(c.label);
  const params = new Map<string, Float64Array>();
  const inputs: Record<string, Int32Array | Float64Array> = {};
  const wrt: string[] = [];
  for (const x of c.ins) {
    if (b.has(x.name)) continue;
    const n = x.shape.reduce((p, q) => p * q, 1);
    if (x.int !== undefined) {
      b.input(x.name, "i32", x.shape);
      inputs[x.name] = Int32Array.from(x.values ?? Array.from({ length: n }, () => r.int(x.int!)));
    } else {
      b.param({ name: x.name, shape: x.shape, trainable: x.trainable ?? true });
      // Away from relu's kink at 0 so its finite difference is well defined.
      params.set(x.name, x.values ? Float64Array.from(x.values) : Float64Array.from(r.fill(n), (v) => (Math.abs(v) < 0.05 ? v + 0.1 : v)));
      if (x.trainable ?? true) wrt.push(x.name);
    }
  }
  const names = Array.from({ length: c.outputs ?? 1 }, (_, i) => `y${i}`);
  const outs = b.opN(c.op, "m", c.ins.map((x) => x.name), c.attrs ?? {}, names);
  const y = outs[c.out ?? 0]!;
  const yt = b.typeOf(y);
  const ny = yt.shape.reduce((p: number, q) => p * (q as number), 1);
  b.input("dy", "f32", yt.shape);
  inputs["dy"] = r.fill(ny);
  b.output(y);
  return { graph: b.finish(), params, inputs, wrt, y };
}

describe("every op's backward agrees with central finite differences (f64)", () => {
  it("every forward op has a gradient rule and every op a reference kernel", () => {
    // Fused ops appear only after autodiff (the fuse pass), so they need no gradient rule.
    const forward = Object.keys(OPS).filter((k) => !(k in BACKWARD_OPS) && !(k in OPTIMIZER_OPS) && !(k in FUSED_OPS));
    expect(forward.filter((k) => !(k in GRAD_RULES) && !NO_GRAD_OPS.has(k))).toEqual([]);
    expect(Object.keys(OPS).filter((k) => !(k in KERNELS))).toEqual([]);
    const tested = new Set(CASES.map((c) => c.op));
    expect(Object.keys(GRAD_RULES).filter((k) => !tested.has(k))).toEqual([]);
  });

  for (const c of CASES) {
    it(c.label, () => {
      const r = new Rand(c.label.length * 31 + 5);
      const { graph, params, inputs, wrt, y } = build(c, r);
      const { graph: g, grads } = differentiate(graph, { of: y, seed: "dy", wrt });
      g.outputs = [y, ...grads.values()];
      expect(verify(g)).toEqual([]);
      const vals = runGraph(g, { params, inputs, dtype: "f64" });
      const dy = inputs["dy"] as Float64Array;
      const L = (p: Map<string, Float64Array>): number => {
        const yv = runGraph(graph, { params: p, inputs, dtype: "f64" }).get(y)!.data;
        let s = 0;
        for (let i = 0; i < yv.length; i++) s += yv[i]! * dy[i]!;
        return s;
      };
      expect([...grads.keys()].sort()).toEqual([...new Set(wrt)].sort());
      for (const p of new Set(wrt)) {
        const analytic = vals.get(grads.get(p)!)!.data;
        const idx = pick(analytic.length, 12, r);
        const fd = fdAt(L, params, p, idx);
        const an = idx.map((i) => analytic[i]!);
        expect(worst(an, fd), `${p}: analytic ${an.join(",")} fd ${fd.join(",")}`).toBeLessThan(1);
      }
    });
  }
});
