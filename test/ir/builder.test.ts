import { describe, expect, it } from "vitest";
import { GraphBuilder } from "../../src/ir/builder.js";
import { pruneDeadOps, type Graph } from "../../src/ir/graph.js";
import { printGraph } from "../../src/ir/text.js";
import { verify } from "../../src/ir/verify.js";
import { buildBaseGraph } from "../../src/models/graph/index.js";
import { builtinProfile } from "./helpers.js";

const base = buildBaseGraph(builtinProfile("tiny-llama"));
const baseText = printGraph(base);

const typeOf = (g: Graph, v: string): string => {
  const o = g.ops.flatMap((op) => op.outputs).find((x) => x.name === v);
  if (!o) throw new Error(`no value ${v}`);
  return `${o.dtype}[${o.shape.join(",")}]`;
};
const opIndex = (g: Graph, v: string): number => g.ops.findIndex((op) => op.outputs.some((o) => o.name === v));

describe("GraphBuilder as passes use it", () => {
  it("wraps a linear with a LoRA branch and redirects its readers", () => {
    const b = GraphBuilder.edit(base);
    const m = "model.layers.0.self_attn.q_proj";
    const y = `${m}.out`;
    const x = b.producer(y)!.inputs[0]!;
    b.after(y);
    const A = b.param({ name: `${m}.lora_A.weight`, shape: [8, 64], trainable: true, origin: "lora", init: { kind: "uniform", low: -0.125, high: 0.125 } });
    const B = b.param({ name: `${m}.lora_B.weight`, shape: [64, 8], trainable: true, origin: "lora", init: { kind: "zeros" } });
    const a = b.op("linear", `${m}.lora_A`, [x, A], {}, `${m}.lora_A.out`);
    const d = b.op("linear", `${m}.lora_B`, [a, B], {}, `${m}.lora_B.out`);
    const s = b.op("scale", m, [d], { factor: 2 }, `${m}.lora_scaled`);
    const y2 = b.op("add", m, [y, s], {}, `${m}.lora_sum`);
    expect(b.replaceUses(y, y2)).toBe(1);
    const g = b.finish();

    expect(verify(g)).toEqual([]);
    const i = opIndex(g, y);
    expect(g.ops.slice(i, i + 5).map((o) => o.outputs[0]!.name)).toEqual([y, a, d, s, y2]);
    expect(g.ops[i + 5]!.inputs).toEqual([y2]);
    expect(g.ops[i + 4]!.inputs).toEqual([y, s]);
    expect(g.params.filter((p) => p.trainable).map((p) => p.name)).toEqual([A, B]);
    expect(printGraph(base)).toBe(baseText);
  });

  it("scales an op's input in place (IA3 on a feed-forward module)", () => {
    const b = GraphBuilder.edit(base);
    const down = b.producer("model.layers.1.mlp.down_proj.out")!;
    const l = b.param({ name: "model.layers.1.mlp.down_proj.ia3_l", shape: [128], trainable: true, origin: "ia3", init: { kind: "ones" } });
    b.before(down);
    const xs = b.op("mul", "model.layers.1.mlp.down_proj", [down.inputs[0]!, l], {}, "model.layers.1.mlp.down_proj.ia3_in");
    b.setInputs(down, [xs, down.inputs[1]!]);
    const g = b.finish();
    expect(verify(g)).toEqual([]);
    expect(opIndex(g, xs)).toBe(opIndex(g, "model.layers.1.mlp.down_proj.out") - 1);
    expect(() => b.setInputs(down, [xs, l])).toThrow("linear at model.layers.1.mlp.down_proj: weight must have rank 2, got f32[128]");
  });

  it("hands prefix keys and values to an attention op", () => {
    const b = GraphBuilder.edit(base);
    const attn = b.producer("model.layers.0.self_attn.attn")!;
    const pk = b.param({ name: "prefix.k.0", shape: [20, 2, 16], trainable: true, origin: "prefix", init: { kind: "normal", mean: 0, std: 1 } });
    const pv = b.param({ name: "prefix.v.0", shape: [20, 2, 16], trainable: true, origin: "prefix", init: { kind: "normal", mean: 0, std: 1 } });
    b.setInputs(attn, [...attn.inputs, pk, pv]);
    expect(verify(b.finish())).toEqual([]);
    const bad = b.param({ name: "prefix.bad", shape: [20, 4, 16] });
    expect(() => b.setInputs(attn, [...attn.inputs.slice(0, 3), bad, bad])).toThrow(/prefix_k f32\[20,4,16\] must be/);
  });

  it("grows the sequence for prompt tuning and retypes everything downstream", () => {
    const b = GraphBuilder.edit(base);
    const e = "model.embed_tokens.out";
    const prompt = b.param({ name: "prompt_embeddings", shape: [5, 64], trainable: true, origin: "prompt_tuning", init: { kind: "rows", from: "model.embed_tokens.weight", rows: [1, 2, 3, 4, 5] } });
    b.after(e);
    const rows = b.op("broadcast", "", [prompt], { shape: ["B", 5, 64] }, "prompt.rows");
    const cat = b.op("concat", "", [rows, e], { axis: 1 }, "prompt.embeds");
    const pad = b.op("full", "", [], { shape: ["B", 5], value: -100, dtype: "i32" }, "prompt.label_pad");
    const labels = b.op("concat", "", [pad, "labels"], { axis: 1 }, "prompt.labels");
    expect(() => b.replaceUses(e, cat)).toThrow(/cannot replace/);
    expect(b.replaceUses(e, cat, { shapeChange: true })).toBe(2);
    expect(b.replaceUses("labels", labels, { shapeChange: true })).toBe(1);
    expect(verify(b.finish()).length).toBeGreaterThan(0);
    b.setInputShape("positions", ["B", "5+T"]);
    b.retype();
    const g = b.finish();
    expect(verify(g)).toEqual([]);
    expect(typeOf(g, cat)).toBe("f32[B,T+5,64]");
    expect(typeOf(g, "model.layers.1.self_attn.attn")).toBe("f32[B,T+5,4,16]");
    expect(typeOf(g, "logits")).toBe("f32[B,T+5,320]");
    expect(g.inputs.find((v) => v.name === "positions")!.shape).toEqual(["B", "T+5"]);
  });

  it("removes ops and prunes dead ones", () => {
    const b = GraphBuilder.edit(base);
    b.atEnd();
    const dead = b.op("silu", "model.norm", ["model.norm.out"], {}, "model.norm.unused");
    const g = b.finish();
    expect(verify(g)).toEqual([`op ${g.ops.length - 1} (silu ${dead}): dead op, no output is read`]);
    expect(pruneDeadOps(g)).toEqual(base);
    b.removeOp(b.producer(dead)!);
    expect(b.finish()).toEqual(base);
    expect(b.has(dead)).toBe(false);
  });

  it("refuses duplicate names, unknown values and ill-typed ops", () => {
    const b = GraphBuilder.edit(base);
    expect(b.fresh("loss")).toBe("loss_1");
    expect(b.fresh("lossy")).toBe("lossy");
    expect(() => b.param({ name: "model.norm.weight", shape: [64] })).toThrow("duplicate value name 'model.norm.weight'");
    expect(() => b.op("silu", "m", ["nothing"], {}, "m.out")).toThrow("unknown value 'nothing'");
    expect(() => b.op("linear", "m", ["model.norm.out", "model.norm.weight"], {}, "m.out")).toThrow(
      "linear at m: weight must have rank 2, got f32[64] (inputs model.norm.out: f32[B,T,64], model.norm.weight: f32[64])",
    );
    expect(() => b.opN("split", "m", ["model.norm.out"], { axis: -1, sizes: [32, 32] }, ["m.a"])).toThrow(/2 outputs, 1 names/);
    expect(() => b.param({ name: "z", shape: [0] })).toThrow(/bad shape/);
  });
});
