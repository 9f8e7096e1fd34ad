import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { builtinConfig, builtinNames, initBuiltinWeights } from "../../src/models/builtin.js";
import { profileFromConfig } from "../../src/models/profile.js";
import { templateByName, templateNames } from "../../src/models/templates.js";
import type { ModelProfile } from "../../src/models/types.js";
import { MODELS, numel, readConfig } from "./checkpoint-files.js";

function builtin(name: string): ModelProfile {
  const p = profileFromConfig(builtinConfig(name)!, `builtin:${name}`);
  if (typeof p === "string") throw new Error(p);
  return p;
}

const TINY = ["tiny-chatglm2", "tiny-llama", "tiny-gpt2"];

describe("built-in configs", () => {
  it("names", () => {
    expect(builtinNames()).toEqual(["tiny-chatglm2", "tiny-llama", "tiny-gpt2", "chatglm2-6b", "llama-2-7b", "gpt2"]);
    expect(builtinConfig("nope")).toBeUndefined();
    expect(builtinConfig("toString")).toBeUndefined();
  });
  it("chatglm2-6b is the real THUDM config", () => {
    expect(builtinConfig("chatglm2-6b")).toEqual(readConfig(join(MODELS, "chatglm2-6b-config")));
  });
  it("hands out copies", () => {
    const a = builtinConfig("tiny-llama")!;
    a["hidden_size"] = 1;
    expect(builtinConfig("tiny-llama")!["hidden_size"]).toBe(64);
  });
  it("tiny models: hidden 64, 2 layers, vocab 320 (3 specials + 256 bytes fit)", () => {
    for (const name of TINY) {
      const p = builtin(name);
      expect(p.dims, name).toMatchObject({ hiddenSize: 64, numLayers: 2, vocabSize: 320, padTokenId: 0, bosTokenId: 1, eosTokenId: 2 });
      expect(p.dims.vocabSize).toBeGreaterThanOrEqual(3 + 256);
    }
    const glm = builtin("tiny-chatglm2");
    expect(glm.dims).toMatchObject({ numHeads: 4, numKvHeads: 2, headDim: 16, intermediateSize: 96 });
    // qkv out = 4*16 + 2*2*16
    expect(glm.modules.find((m) => m.path.endsWith("query_key_value"))!.outFeatures).toBe(128);
    expect(builtin("tiny-llama").dims).toMatchObject({ numHeads: 4, numKvHeads: 2, headDim: 16 });
  });
});

describe("initBuiltinWeights", () => {
  it("gives every parameter, with its shape, deterministically per seed", () => {
    for (const name of TINY) {
      const p = builtin(name);
      const w = initBuiltinWeights(p, 7);
      if (typeof w === "string") throw new Error(w);
      const expected = p.modules.flatMap((m) => m.params);
      expect([...w.keys()]).toEqual(expected.map((x) => x.name));
      for (const par of expected) expect(w.get(par.name)!.length).toBe(numel(par.shape));
      const again = initBuiltinWeights(p, 7) as Map<string, Float32Array>;
      const same = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer).equals(Buffer.from(b.buffer));
      for (const [k, v] of w) expect(same(again.get(k)!, v), k).toBe(true);
      const other = initBuiltinWeights(p, 8) as Map<string, Float32Array>;
      const firstLinear = expected.find((x) => x.name.endsWith(".weight") && x.shape.length === 2)!.name;
      expect(same(other.get(firstLinear)!, w.get(firstLinear)!)).toBe(false);
    }
  });
  it("norm weights 1, biases 0, matrices N(0, 0.02)", () => {
    const p = builtin("tiny-gpt2");
    const w = initBuiltinWeights(p, 1) as Map<string, Float32Array>;
    expect([...w.get("transformer.h.0.ln_1.weight")!].every((x) => x === 1)).toBe(true);
    expect([...w.get("transformer.h.0.ln_1.bias")!].every((x) => x === 0)).toBe(true);
    expect([...w.get("transformer.h.1.attn.c_attn.bias")!].every((x) => x === 0)).toBe(true);
    const all: number[] = [];
    for (const [k, v] of w) if (k.endsWith(".weight") && !k.includes(".ln_")) all.push(...v);
    const n = all.length;
    const mean = all.reduce((a, b) => a + b, 0) / n;
    const std = Math.sqrt(all.reduce((a, b) => a + (b - mean) ** 2, 0) / n);
    // n ≈ 120k draws: the sample mean's std is 0.02/sqrt(n) ≈ 6e-5; the sample std is within ~0.5 %.
    expect(Math.abs(mean)).toBeLessThan(3e-4);
    expect(Math.abs(std - 0.02)).toBeLessThan(4e-4);
    const beyond3 = all.filter((x) => Math.abs(x) > 0.06).length / n;
    expect(beyond3).toBeGreaterThan(0.0015); // normal tails: 0.27 % beyond 3 sigma
    expect(beyond3).toBeLessThan(0.0040);
  });
  it("refuses the full-size models", () => {
    for (const name of ["chatglm2-6b", "llama-2-7b", "gpt2"]) {
      const w = initBuiltinWeights(builtin(name), 0);
      expect(typeof w, name).toBe("string");
      expect(w).toContain("no weights");
      expect(w).toContain(`builtin:${name}`);
    }
  });
});

describe("templates", () => {
  it("names and texts", () => {
    expect(templateNames()).toEqual(["chatglm2", "llama2", "alpaca", "plain"]);
    expect(templateByName("chatglm2")).toBe("[Round {round}]\n\n问：{prompt}\n\n答：");
    expect(templateByName("llama2")).toBe("[INST] {prompt} [/INST]");
    expect(templateByName("plain")).toBe("{prompt}");
    expect(templateByName("alpaca")).toContain("### Instruction:\n{prompt}");
    expect(templateByName("constructor")).toBeUndefined();
  });
});
