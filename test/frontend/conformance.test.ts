/**
 * The conformance set: each line checks clean on its own, verbatim, and means what the language
 * promises (read back from the spec).
 */
import { describe, expect, it } from "vitest";
import { checkSource } from "../../src/frontend.js";
import type { Spec } from "../../src/check/spec.js";

const lines: [string, (s: Spec) => void][] = [
  ['model "models/stories260K";', (s) => expect(s.model).toMatchObject({ source: "models/stories260K" })],
  ['model "builtin:tiny-chatglm2";', (s) => expect(s.model).toMatchObject({ builtin: "tiny-chatglm2" })],
  [
    'data train "train.jsonl" { prompt = ask; response = answer; max_source = 128; max_target = 256; }',
    (s) => expect(s.data.train).toMatchObject({ file: "train.jsonl", format: "jsonl", mode: "text", fields: { prompt: "ask", response: "answer" }, lengths: { maxSource: 128, maxTarget: 256 }, loss: "response", shuffle: true }),
  ],
  ['data train "batch.jsonl" { shuffle = false; }', (s) => expect(s.data.train).toMatchObject({ file: "batch.jsonl", mode: "tokenized", shuffle: false })],
  [
    "freeze base; lora r=8 on query_key_value;",
    (s) => {
      expect(s.freeze).toMatchObject([{ action: "freeze", target: { kind: "base" } }]);
      expect(s.methods).toMatchObject([{ method: "lora", options: { r: 8, alpha: 8, dropout: 0, rslora: false }, target: { terms: [{ atom: { kind: "name", text: "query_key_value" } }] } }]);
    },
  ],
  [
    "lora r=4 alpha=8 dropout=0 on q_proj, v_proj;",
    (s) => expect(s.methods).toMatchObject([{ method: "lora", options: { r: 4, alpha: 8, dropout: 0 }, target: { terms: [{ atom: { text: "q_proj" } }, { atom: { text: "v_proj" } }] } }]),
  ],
  [
    "adalora r=8 alpha=32 dropout=0.01 on query_key_value { init_r = 12; tinit = 200; tfinal = 1000; delta_t = 10; }",
    (s) => expect(s.methods).toMatchObject([{ method: "adalora", options: { r: 8, alpha: 32, dropout: 0.01, init_r: 12, tinit: 200, tfinal: 1000, delta_t: 10, beta1: 0.85, beta2: 0.85, orth_reg_weight: 0.5 } }]),
  ],
  [
    "ia3 on k_proj, v_proj, down_proj;",
    (s) => expect(s.methods).toMatchObject([{ method: "ia3", target: { terms: [{ atom: { text: "k_proj" } }, { atom: { text: "v_proj" } }, { atom: { text: "down_proj" } }] } }]),
  ],
  ["prompt_tuning tokens=10;", (s) => expect(s.methods).toMatchObject([{ method: "prompt_tuning", options: { tokens: 10, init: { kind: "random" } } }])],
  ['init from "adapters/step-400";', (s) => expect(s.init).toMatchObject({ from: "adapters/step-400" })],
  [
    "train { epochs = 5; batch = 1; grad_accum = 16; lr = 1e-4; optimizer = adamw; clip = 1.0; precision = f16; }",
    (s) => expect(s.train).toMatchObject({ length: { epochs: 5 }, batch: 1, gradAccum: 16, lr: 1e-4, optimizer: { kind: "adamw", betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0 }, clip: 1, precision: "f16" }),
  ],
  [
    "train { steps = 3; batch = 1; grad_accum = 2; lr = 0.001; optimizer = adamw; clip = 1.0; weight_decay = 0.01; }",
    (s) => expect(s.train).toMatchObject({ length: { steps: 3 }, batch: 1, gradAccum: 2, lr: 0.001, optimizer: { kind: "adamw", weightDecay: 0.01 }, clip: 1 }),
  ],
  ['save every epoch to "output";', (s) => expect(s.save).toEqual([expect.objectContaining({ dir: "output", every: { every: 1, unit: "epochs" } })])],
  ['save every 4 steps to "checkpoints";', (s) => expect(s.save).toEqual([expect.objectContaining({ dir: "checkpoints", every: { every: 4, unit: "steps" } })])],
  ['save to "out";', (s) => expect(s.save).toEqual([expect.objectContaining({ dir: "out" })])],
];

describe("conformance lines", () => {
  for (const [line, meaning] of lines) {
    it(line, () => {
      const r = checkSource(line, "c.peft", { fragment: true });
      expect(r.diagnostics).toEqual([]);
      meaning(r.spec);
    });
  }

  it("the seed experiment checks clean as a whole file", () => {
    const src = [lines[1]![0], lines[2]![0], "freeze base;", lines[6]![0], lines[10]![0], lines[12]![0]].join("\n");
    const r = checkSource(src, "seed.peft");
    expect(r.diagnostics).toEqual([]);
    expect(r.spec.save[0]!.every).toEqual({ every: 1, unit: "epochs" });
  });

  it("a save without 'every' saves once at the end", () => {
    expect(checkSource('save to "out";', "c.peft", { fragment: true }).spec.save[0]!.every).toBeUndefined();
  });
});
