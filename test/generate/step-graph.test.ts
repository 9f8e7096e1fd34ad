/**
 * The decode-step graph derived from the forward graph: its shape (one position, attention turned
 * into cache writes and one-query attention, parameter-only work moved to the setup graph, prompt
 * rows picked by decode.row), and — run by the CPU reference executor with its caches carried
 * from step to step — the same next-token logits as the forward graph recomputed on the whole
 * sequence, for every method on every architecture. This checks the transformation apart from
 * any WGSL.
 */
import { describe, expect, it } from "vitest";
import { decodeStepGraph, ROW_INPUT } from "../../src/codegen/wgsl/decode/step-graph.js";
import { ReferenceDecoder } from "../../src/runtime/generate/decoder.js";
import { loadForGeneration } from "../../src/runtime/generate/load.js";
import { StepReferenceDecoder } from "../../src/runtime/generate/step-reference.js";
import { argmax, expectClose, writeAdapter } from "./helpers.js";

describe("decode-step graph", () => {
  it("llama with prefix and LoRA: one position, caches per layer, the prefix precomputed", async () => {
    const m = await loadForGeneration("builtin:tiny-llama", await writeAdapter("builtin:tiny-llama", "prefix tokens=3;", 1));
    const step = decodeStepGraph(m.graph, { tokens: 20, maxPositions: 16 });
    const ops = step.graph.ops.map((o) => o.op);
    expect(ops).not.toContain("attention");
    expect(ops.filter((o) => o === "kv_cache_write")).toHaveLength(4);
    expect(ops.filter((o) => o === "attention_decode")).toHaveLength(2);
    expect(step.maxLen).toBe(16);
    expect(step.caches.map((c) => c.shape)).toEqual(Array(4).fill([16, 2, 16]));
    // Every size is concrete and every activation is one position of one row.
    for (const op of step.graph.ops) for (const o of op.outputs) expect(o.shape.every((d) => typeof d === "number")).toBe(true);
    expect(step.graph.ops.find((o) => o.outputs[0]!.name === "logits")!.outputs[0]!.shape).toEqual([1, 1, 320]);
    // The prefix keys/values are constants the setup graph computes; the step reads no encoder weight.
    expect(step.setup.outputs).toEqual(["model.layers.0.self_attn.prefix_k", "model.layers.0.self_attn.prefix_v", "model.layers.1.self_attn.prefix_k", "model.layers.1.self_attn.prefix_v"]);
    expect(step.graph.params.filter((p) => p.origin === "constant").map((p) => p.shape)).toEqual(Array(4).fill([3, 2, 16]));
    expect(step.graph.params.some((p) => p.name.startsWith("prefix_encoder") || p.name.startsWith("prompt"))).toBe(false);
    expect(step.virtualTokens).toBe(0);
  });

  it("prompt tuning: the virtual rows become a table picked by decode.row", async () => {
    const m = await loadForGeneration("builtin:tiny-gpt2", await writeAdapter("builtin:tiny-gpt2", "prompt_tuning tokens=4;", 2));
    const step = decodeStepGraph(m.graph, { tokens: 10 });
    expect(step.virtualTokens).toBe(4);
    expect(step.maxLen).toBe(14);
    expect(step.graph.inputs.map((v) => v.name)).toContain(ROW_INPUT);
    const pick = step.graph.ops.find((o) => o.op === "embedding" && o.inputs[0] === ROW_INPUT)!;
    expect(step.graph.ops.find((o) => o.outputs[0]!.name === pick.inputs[1])!.outputs[0]!.shape).toEqual([5, 64]);
  });

  it("refuses attention that is not causal", async () => {
    const m = await loadForGeneration("builtin:tiny-llama", undefined);
    const g = structuredClone(m.graph);
    g.ops.find((o) => o.op === "attention")!.attrs["causal"] = false;
    expect(() => decodeStepGraph(g, { tokens: 8 })).toThrow(/not causal/);
  });
});

const CASES: [string, string][] = [
  ["builtin:tiny-llama", "lora r=4 alpha=8 on q_proj, v_proj, down_proj;"],
  ["builtin:tiny-llama", "adalora r=2 on q_proj, o_proj { init_r = 4; }"],
  ["builtin:tiny-llama", "prompt_tuning tokens=3;"],
  ["builtin:tiny-llama", "adapter houlsby { bottleneck = 4; }"],
  ["builtin:tiny-chatglm2", "p_tuning_v2 tokens=2;"],
  ["builtin:tiny-chatglm2", "ia3;"],
  ["builtin:tiny-gpt2", "prefix tokens=3;"],
  ["builtin:tiny-gpt2", "p_tuning tokens=2;"],
  ["builtin:tiny-gpt2", "bitfit;"],
];

describe("the step graph on the reference executor decodes as the full forward graph does", () => {
  CASES.forEach(([model, method], i) => {
    it(`${model}: ${method}`, async () => {
      const m = await loadForGeneration(model, await writeAdapter(model, method, 10 + i));
      const full = new ReferenceDecoder(m.graph, m.params);
      const step = new StepReferenceDecoder(m.graph, m.params, { tokens: 16 });
      const ids = [7, 200, 33, 150];
      for (let t = 0; t < 8; t++) {
        const want = await full.next(ids);
        const got = await step.next(ids);
        expectClose(`${model} ${method} position ${ids.length}`, got, want, { atol: 1e-5, rtol: 1e-5 });
        ids.push(argmax(want));
      }
    });
  });
});
