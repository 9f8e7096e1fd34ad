/**
 * Every method's whole training step on a tiny model of each architecture: the gradients the
 * compiled graph computes (through the reference executor, f64) against central finite differences
 * of its loss, at a few random entries of every trainable tensor.
 */
import { describe, expect, it } from "vitest";
import type { Graph } from "../../src/ir/graph.js";
import { runGraph } from "../../src/runtime/reference/executor.js";
import { batch, compile, fdAt, lossOf, pick, Rand, specText, weightsFor, worst } from "./helpers.js";

const ARCHS = ["tiny-llama", "tiny-chatglm2", "tiny-gpt2"] as const;

/** Method statements as a user writes them; where a default target differs per architecture, per architecture. */
const METHODS: Record<string, string | Record<(typeof ARCHS)[number], string>> = {
  unfreeze: { "tiny-llama": "unfreeze q_proj, input_layernorm;", "tiny-chatglm2": "unfreeze query_key_value, dense_4h_to_h;", "tiny-gpt2": "unfreeze c_attn, ln_2, wte;" },
  lora: "freeze base; lora r=2 alpha=4;",
  adalora: { "tiny-llama": "freeze base; adalora r=2 alpha=4 on q_proj, v_proj { init_r = 3; total_step = 10; }", "tiny-chatglm2": "freeze base; adalora r=2 alpha=4 on query_key_value { init_r = 3; total_step = 10; }", "tiny-gpt2": "freeze base; adalora r=2 alpha=4 on c_attn { init_r = 3; total_step = 10; }" },
  ia3: "freeze base; ia3;",
  bitfit: { "tiny-llama": "freeze base; unfreeze @norm;", "tiny-chatglm2": "freeze base; bitfit;", "tiny-gpt2": "freeze base; bitfit;" },
  "adapter houlsby": "freeze base; adapter houlsby { reduction = 16; }",
  "adapter pfeiffer": "freeze base; adapter pfeiffer { reduction = 16; }",
  "adapter parallel": "freeze base; adapter parallel { bottleneck = 4; }",
  prefix: "freeze base; prefix tokens=2;",
  p_tuning_v2: "freeze base; p_tuning_v2 tokens=2;",
  prompt_tuning: "freeze base; prompt_tuning tokens=2;",
  p_tuning: "freeze base; p_tuning tokens=2 { hidden = 8; }",
};

function checkGradients(graph: Graph, weights: Map<string, Float64Array>, inputs: ReturnType<typeof batch>, seed: number): void {
  const grads = graph.outputs.filter((o) => o.startsWith("grad."));
  const trainable = graph.params.filter((p) => p.trainable).map((p) => `grad.${p.name}`);
  expect(grads.sort()).toEqual(trainable.sort());
  expect(grads.length).toBeGreaterThan(0);
  const vals = runGraph(graph, { params: weights, inputs, dtype: "f64", ops: (op) => !op.op.endsWith("_update") && op.op !== "clip_grad_norm" });
  const r = new Rand(seed);
  const L = (p: Map<string, Float64Array>) => lossOf(graph, p, inputs);
  for (const g of grads) {
    const p = g.slice("grad.".length);
    const an = vals.get(g)!.data;
    const idx = pick(an.length, 2, r);
    const fd = fdAt(L, weights, p, idx);
    const a = idx.map((i) => an[i]!);
    expect(worst(a, fd, 1e-7, 1e-4), `${p}[${idx.join(",")}]: analytic ${a.join(", ")} vs fd ${fd.join(", ")}`).toBeLessThan(1);
  }
}

describe("whole training step agrees with finite differences of the loss (f64)", () => {
  for (const arch of ARCHS) {
    for (const [method, body] of Object.entries(METHODS)) {
      it(`${method} on ${arch}`, () => {
        const text = typeof body === "string" ? body : body[arch];
        const { graph, profile } = compile(specText(arch, text));
        const weights = weightsFor(graph, profile, 3);
        checkGradients(graph, weights, batch(graph, 2, 4, profile.dims.vocabSize, 11), 5);
      });
    }
  }
});
