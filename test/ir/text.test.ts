import { describe, expect, it } from "vitest";
import { GraphBuilder } from "../../src/ir/builder.js";
import { printGraph } from "../../src/ir/text.js";
import { verify } from "../../src/ir/verify.js";
import { buildBaseGraph } from "../../src/models/graph/index.js";
import { builtinProfile, folderProfile } from "./helpers.js";

/** A two-module model with a LoRA branch on `proj`, small enough to spell out its text form. */
function toy() {
  const b = new GraphBuilder("toy");
  b.input("input_ids", "i32", ["B", "T"]);
  b.input("labels", "i32", ["B", "T"]);
  b.param({ name: "emb.weight", shape: [10, 4] });
  b.param({ name: "proj.weight", shape: [10, 4], dtype: "f16" });
  b.param({ name: "proj.lora_A.weight", shape: [2, 4], trainable: true, origin: "lora", init: { kind: "uniform", low: -0.5, high: 0.5 } });
  b.param({ name: "proj.lora_B.weight", shape: [10, 2], trainable: true, origin: "lora", init: { kind: "zeros" } });
  const e = b.op("embedding", "emb", ["input_ids", "emb.weight"], {}, "emb.out");
  const y = b.op("linear", "proj", [e, "proj.weight"], {}, "proj.out");
  const a = b.op("linear", "proj.lora_A", [e, "proj.lora_A.weight"], {}, "proj.lora_A.out");
  const d = b.op("linear", "proj.lora_B", [a, "proj.lora_B.weight"], {}, "proj.lora_B.out");
  const s = b.op("scale", "proj", [d], { factor: 8 }, "proj.lora_scaled");
  const z = b.op("add", "proj", [y, s], {}, "logits");
  b.output(b.op("cross_entropy", "", [z, "labels"], { ignore_index: -100 }, "loss"));
  return b.finish();
}

describe("printGraph", () => {
  it("prints one line per input, param, op and output", () => {
    const g = toy();
    expect(verify(g)).toEqual([]);
    expect(printGraph(g)).toBe(
      [
        "graph toy",
        "# 2 inputs, 4 params (2 trainable), 7 ops",
        "# parameter elements: 108 total, 28 trainable",
        "input input_ids: i32[B,T]",
        "input labels: i32[B,T]",
        "param frozen    emb.weight: f32[10,4]",
        "param frozen    proj.weight: f16[10,4]",
        "param trainable proj.lora_A.weight: f32[2,4] origin=lora init=uniform(-0.5,0.5)",
        "param trainable proj.lora_B.weight: f32[10,2] origin=lora init=zeros",
        "emb.out: f32[B,T,4] = embedding(input_ids, emb.weight)",
        "proj.out: f32[B,T,10] = linear(emb.out, proj.weight)",
        "proj.lora_A.out: f32[B,T,2] = linear(emb.out, proj.lora_A.weight)",
        "proj.lora_B.out: f32[B,T,10] = linear(proj.lora_A.out, proj.lora_B.weight)",
        "proj.lora_scaled: f32[B,T,10] = scale(proj.lora_B.out) {factor=8}",
        "logits: f32[B,T,10] = add(proj.out, proj.lora_scaled)  @proj",
        "loss: f32[] = cross_entropy(logits, labels) {ignore_index=-100}",
        "output loss",
        "",
      ].join("\n"),
    );
  });

  it("sorts attributes and prints lists and multi-output ops inline", () => {
    const text = printGraph(buildBaseGraph(builtinProfile("tiny-chatglm2")));
    const at = "transformer.encoder.layers.0.self_attention";
    expect(text).toContain(
      `${at}.q: f32[B,T,64], ${at}.k: f32[B,T,32], ${at}.v: f32[B,T,32] = split(${at}.query_key_value.out) {axis=-1, sizes=[64,32,32]}\n`,
    );
    expect(text).toContain(`${at}.q_rot: f32[B,T,4,16] = rope(${at}.q_heads, positions) {mode=interleaved, rotary_dim=8, theta=10000}\n`);
    expect(text).toContain("logits: f32[B,T,320] = linear(transformer.encoder.final_layernorm.out, transformer.output_layer.weight)  @transformer.output_layer\n");
    expect(text.startsWith("graph builtin:tiny-chatglm2\n# 3 inputs, 17 params (0 trainable), 38 ops\n# parameter elements: 102,976 total, 0 trainable\n")).toBe(true);
  });

  for (const dir of ["tiny-chatglm2", "tiny-gpt2-d32", "stories260K/hf", "chatglm2-6b-config"]) {
    it(`is byte-identical across two independent builds (${dir})`, () => {
      const a = printGraph(buildBaseGraph(folderProfile(dir)));
      const b = printGraph(buildBaseGraph(folderProfile(dir)));
      expect(a).toBe(b);
      expect(a.split("\n").filter((l) => l.startsWith("param frozen")).length).toBeGreaterThan(10);
      expect(a).not.toMatch(/trainable [^0-9]/);
    });
  }
});
