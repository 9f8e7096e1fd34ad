/**
 * What autodiff leaves out. LoRA on the last layer only: no frozen matrix gets a weight gradient,
 * and no backward op belongs to a layer below the first adapted one. Also: saved activations are
 * exactly the forward values backward reads, and `pefc plan`'s FLOP counts show the saving.
 */
import { describe, expect, it } from "vitest";
import { stepFlops, opFlops } from "../../src/plan/flops.js";
import { printGraph } from "../../src/ir/text.js";
import { graphFromJson, graphToJson } from "../../src/ir/json.js";
import { compile, specText } from "./helpers.js";

const isBackward = (name: string) => name.startsWith("grad.");

describe("LoRA on the last layers only", () => {
  const cases = [
    ["tiny-llama", "model.layers.", "q_proj"],
    ["tiny-chatglm2", "transformer.encoder.layers.", "query_key_value"],
    ["tiny-gpt2", "transformer.h.", "c_attn"],
  ] as const;
  for (const [arch, layers, on] of cases) {
    it(`${arch}: no frozen weight gradient, no backward below layer 1`, () => {
      const { graph } = compile(specText(arch, `freeze base; lora r=2 alpha=4 on ${on} in layers[-1:];`));
      const frozen = new Set(graph.params.filter((p) => !p.trainable).map((p) => p.name));
      const trainable = graph.params.filter((p) => p.trainable);
      expect(trainable.length).toBeGreaterThan(0);
      expect(trainable.every((p) => p.origin === "lora" && p.name.startsWith(`${layers}1.`))).toBe(true);
      const backward = graph.ops.filter((op) => op.outputs.every((o) => isBackward(o.name)));
      expect(backward.length).toBeGreaterThan(0);
      // No gradient of a frozen parameter anywhere, as a value or an output.
      for (const op of graph.ops) for (const o of op.outputs) expect(frozen.has(o.name.replace(/^grad\./, "")) && isBackward(o.name)).toBe(false);
      expect(graph.outputs.filter((o) => frozen.has(o.replace(/^grad\./, "")))).toEqual([]);
      // No weight-gradient op reads anything toward a frozen matrix.
      expect(backward.filter((op) => op.op === "linear_grad_weight" && !trainable.some((p) => op.outputs[0]!.name === `grad.${p.name}`))).toEqual([]);
      // Nothing of layer 0, nor the embedding, runs backward.
      const below = backward.filter((op) => op.module.startsWith(`${layers}0`) || op.module.includes("embed") || op.module.endsWith("wte") || op.module.endsWith("wpe"));
      expect(below.map((op) => `${op.op} ${op.outputs[0]!.name}`)).toEqual([]);
      // Backward does not read layer 0's activations: only the layer's input is needed, as a saved value at most.
      const saved = graph.saved ?? [];
      expect(saved.filter((v) => v.startsWith(`${layers}0.`) && !v.endsWith("mlp_residual"))).toEqual([]);
    });
  }

  it("saved lists exactly the forward values backward ops read, in definition order, and survives text and JSON", () => {
    const { graph } = compile(specText("tiny-llama", "freeze base; lora r=2 alpha=4 on q_proj in layers[-1:];"));
    const forward = new Map<string, number>();
    graph.inputs.forEach((v, i) => forward.set(v.name, -1 - i));
    graph.ops.forEach((op, i) => {
      if (!op.outputs.every((o) => isBackward(o.name)) && !op.op.endsWith("_update") && op.op !== "clip_grad_norm") op.outputs.forEach((o) => forward.set(o.name, i));
    });
    const read = new Set<string>();
    for (const op of graph.ops) if (op.outputs.every((o) => isBackward(o.name))) for (const v of op.inputs) if (forward.has(v)) read.add(v);
    expect(new Set(graph.saved)).toEqual(read);
    expect(graph.saved).toContain("model.layers.1.input_layernorm.out");
    expect(graph.saved).not.toContain("model.layers.0.self_attn.attn");
    const text = printGraph(graph);
    expect(text).toContain("saved model.layers.1.input_layernorm.out\n");
    expect(graphFromJson(graphToJson(graph)).saved).toEqual(graph.saved);
  });
});

describe("FLOPs per step", () => {
  it("a linear and its gradients count 2·M·N·K each", () => {
    const op = { op: "linear", module: "m", inputs: ["x", "w"], outputs: [{ name: "y", dtype: "f32" as const, shape: ["B", "T", 5] }], attrs: {} };
    const shapes: Record<string, (string | number)[]> = { x: ["B", "T", 7], w: [5, 7], dy: ["B", "T", 5] };
    expect(opFlops(op, (v) => shapes[v]!, { B: 2, T: 3 })).toBe(2 * 6 * 5 * 7);
    const gw = { ...op, op: "linear_grad_weight", inputs: ["x", "dy"], outputs: [{ name: "grad.w", dtype: "f32" as const, shape: [5, 7] }] };
    expect(opFlops(gw, (v) => shapes[v]!, { B: 2, T: 3 })).toBe(2 * 6 * 5 * 7);
  });

  it("pruning saves backward work: LoRA on the last layer costs less than full backward, and less than LoRA everywhere", () => {
    const last = stepFlops(compile(specText("tiny-llama", "freeze base; lora r=2 alpha=4 on q_proj in layers[-1:];"), "optimizer").graph, { B: 2, T: 16 });
    const all = stepFlops(compile(specText("tiny-llama", "freeze base; lora r=2 alpha=4 on q_proj;"), "optimizer").graph, { B: 2, T: 16 });
    expect(last.forward).toBeGreaterThan(0);
    expect(last.backward).toBeLessThan(all.backward);
    expect(all.backward).toBeLessThan(all.unprunedBackward);
    // The unpruned backward is the base model's, whatever is adapted; the adapters add a little.
    expect(last.unprunedBackward).toBeGreaterThan(0.9 * all.unprunedBackward);
    // The optimizer touches only the adapters: 2 layers' worth of LoRA parameters against 1.
    expect(all.optimizer).toBeCloseTo(2 * last.optimizer, 6);
  });
});
