// One whole training step on the GPU backend against the reference executor, for every method on
// the tiny builtin model of each architecture: loss, every summed gradient, every updated
// parameter and optimizer tensor, the evaluation loss after the step (step-check.ts). Two
// micro-batches per step (the second ragged, so padding is exercised); LoRA runs with dropout,
// whose masks must match bit for bit for the gradients to agree. Optimizers vary by case (AdamW
// with clipping by default, Adam, SGD with momentum and no clipping). AdaLoRA also runs its rank
// allocation (masking at step 1) and must end with the reference's rank pattern.

import { describe, expect, it } from "vitest";
import type { AdaloraAllocation } from "../../src/runtime/reference/executor.js";
import { compileBoth, microBatch, specText, type Compiled } from "./helpers.js";
import { checkStep } from "./step-check.js";

type Arch = "tiny-llama" | "tiny-chatglm2" | "tiny-gpt2";
const ARCHS: Arch[] = ["tiny-llama", "tiny-chatglm2", "tiny-gpt2"];

const METHODS: { name: string; body: (a: Arch) => string; train?: string }[] = [
  { name: "lora (dropout 0.1)", body: () => "freeze base; lora r=4 alpha=8 dropout=0.1;" },
  { name: "adalora", body: () => "freeze base; adalora r=2 init_r=4 alpha=8;", train: "optimizer = adam;" },
  { name: "ia3", body: () => "freeze base; ia3;", train: "optimizer = sgd; momentum = 0.9; clip = 0;" },
  { name: "bitfit / unfreeze", body: (a) => (a === "tiny-llama" ? "freeze base; unfreeze @norm;" : "freeze base; bitfit;") },
  { name: "adapter houlsby", body: () => "freeze base; adapter houlsby bottleneck=8;" },
  { name: "adapter pfeiffer", body: () => "freeze base; adapter pfeiffer bottleneck=8 dropout=0.1;" },
  { name: "adapter parallel", body: () => "freeze base; adapter parallel bottleneck=8 act=gelu;", train: "optimizer = sgd; clip = 0.5;" },
  { name: "prefix", body: () => "freeze base; prefix tokens=2 hidden=8;" },
  { name: "p_tuning_v2", body: () => "freeze base; p_tuning_v2 tokens=2;" },
  { name: "prompt_tuning", body: () => "freeze base; prompt_tuning tokens=3 init=vocab;" },
  { name: "p_tuning", body: () => "freeze base; p_tuning tokens=3 hidden=16;" },
];

const B = 2;
const T = 8;

/**
 * AdaLoRA's allocation for every adapted module. PEFT's first update_and_allocate gets
 * global_step 0 ≤ tinit, which scores but never masks; masking inside the device's step is
 * checked over whole schedules in test/kernels/adalora.test.ts and test/conformance.
 */
function allocation(c: Compiled): AdaloraAllocation {
  const mods = c.train.params.filter((p) => p.name.endsWith(".lora_E")).map((p) => p.name.slice(0, -".lora_E".length));
  return {
    config: { targetR: 2, tinit: 0, tfinal: 0, deltaT: 1, totalStep: 10, beta1: 0.85, beta2: 0.85 },
    matrices: mods.map((m) => ({ name: m, A: `${m}.lora_A`, E: `${m}.lora_E`, B: `${m}.lora_B` })),
  };
}

describe.each(ARCHS.map((a) => [a]))("%s", (arch) => {
  for (const m of METHODS) {
    it(`${m.name}: one step with grad_accum 2 matches the reference`, async () => {
      const c = compileBoth(specText(arch, m.body(arch), `grad_accum = 2; ${m.train ?? ""}`));
      const vocab = c.profile.dims.vocabSize;
      const adalora = m.name === "adalora" ? allocation(c) : undefined;
      const r = await checkStep(c, [microBatch(B, T, vocab, 1), microBatch(B, T - 2, vocab, 2, true)], { B, T, ...(adalora ? { adalora } : {}) });
      expect(r.gradTensors).toBeGreaterThan(0);
      // The optimizer ran as one dispatch over the arenas (program/update.ts), plus the clip norm's.
      expect(r.backend.program.step!.update.filter((cmd) => cmd.kind === "dispatch" && cmd.op === "fused_update").length).toBeGreaterThan(0);
      expect(r.backend.program.step!.update.some((cmd) => cmd.kind === "copy")).toBe(false);
      if (adalora) expect(await r.backend.rankPattern()).toBeUndefined();
      r.backend.dispose();
    }, 120_000);
  }
});

describe("precision f16", () => {
  it("frozen linear weights stored f16: one step matches the reference on the rounded weights", async () => {
    const c = compileBoth(specText("tiny-llama", "freeze base; lora r=4 alpha=8 dropout=0.1;", "grad_accum = 2; precision = f16;"));
    const r = await checkStep(c, [microBatch(B, T, c.profile.dims.vocabSize, 1), microBatch(B, T, c.profile.dims.vocabSize, 2)], { B, T, f16: true });
    // Every projection, the LM head (not tied in tiny-llama) and the embedding table.
    expect(r.f16Weights).toBe(16);
    expect(r.backend.program.params.find((p) => p.name === "model.embed_tokens.weight")!.dtype).toBe("f16");
    expect(r.backend.program.params.find((p) => p.name === "lm_head.weight")!.dtype).toBe("f16");
    r.backend.dispose();
  }, 120_000);
});

describe("weights larger than a storage binding", () => {
  // A 4 KiB binding limit splits the embedding tables, LM heads and MLP weights of the tiny models
  // into row blocks (program/split.ts); the step must still be the reference's. tiny-gpt2 ties its
  // table to the LM head, so one split weight is read by an embedding and by a linear and its
  // gradient. The gradient arenas then span several buffers, so the update runs op by op.
  for (const arch of ["tiny-llama", "tiny-gpt2"] as const) {
    it(`${arch}: one LoRA step with weights split into row blocks matches the reference`, async () => {
      const c = compileBoth(specText(arch, "freeze base; lora r=4 alpha=8 dropout=0.1;", "grad_accum = 2;"));
      const vocab = c.profile.dims.vocabSize;
      const r = await checkStep(c, [microBatch(B, T, vocab, 1), microBatch(B, T - 2, vocab, 2, true)], { B, T, maxBindingBytes: 4096 });
      const parts = r.backend.program.params.filter((p) => p.rowsOf);
      const split = new Set(parts.map((p) => p.rowsOf!.name));
      expect(split).toContain(arch === "tiny-llama" ? "model.embed_tokens.weight" : "transformer.wte.weight");
      for (const p of parts) expect(p.bytes).toBeLessThanOrEqual(4096);
      expect(r.backend.program.step!.update.some((cmd) => cmd.kind === "dispatch" && cmd.op === "fused_update")).toBe(false);
      r.backend.dispose();
    }, 120_000);
  }
});
