/** pefc's own layout, for runs PEFT cannot express: what the config says and how tensors are named. */
import { describe, expect, it } from "vitest";
import { adapterFiles } from "../../src/runtime/adapter/index.js";
import { build, fillValues } from "./helpers.js";

describe("PEFC layout", () => {
  it("bitfit on GPT-2: every trained bias under its checkpoint name, the spec's method in the config", () => {
    const b = build("builtin:tiny-gpt2", "bitfit on c_attn, c_fc;");
    const f = adapterFiles({ ...b, values: fillValues(b.graph), baseModel: "gpt2" });
    const cfg = JSON.parse(f.config) as { peft_type: string; pefc: Record<string, unknown> };
    expect(cfg.peft_type).toBe("PEFC");
    expect(cfg.pefc).toMatchObject({ format_version: 1, language_version: "0.1", spec_file: "case.peft", reason: "bitfit (PEFT has no such method)", model: { arch: "gpt2", num_layers: 2 } });
    expect(cfg.pefc.methods).toEqual([
      { gated: false, method: "bitfit", options: {}, target: { except: [], terms: [{ atom: { kind: "name", text: "c_attn" } }, { atom: { kind: "name", text: "c_fc" } }] } },
    ]);
    expect(Object.fromEntries(f.tensors.map((t) => [t.name, t.shape]))).toEqual({
      "transformer.h.0.attn.c_attn.bias": [192], "transformer.h.0.mlp.c_fc.bias": [256],
      "transformer.h.1.attn.c_attn.bias": [192], "transformer.h.1.mlp.c_fc.bias": [256],
    });
    expect(JSON.parse(f.metadata.pefc!)).toMatchObject({ layout: "PEFC" });
  });

  it("a gated lora in unipelt keeps gates and its prefix encoder under graph names", () => {
    const b = build("builtin:tiny-llama", "unipelt;");
    const f = adapterFiles({ ...b, values: fillValues(b.graph), baseModel: "l" });
    const names = f.tensors.map((t) => t.name);
    expect(JSON.parse(f.config)).toMatchObject({ peft_type: "PEFC", pefc: { reason: "3 methods in one run" } });
    expect(names).toContain("model.layers.0.self_attn.q_proj.lora_gate.weight");
    expect(names.some((n) => n.startsWith("prefix_encoder."))).toBe(true);
    expect(names.every((n) => !n.startsWith("base_model."))).toBe(true);
  });
});
