import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { builtinConfig } from "../../src/models/builtin.js";
import { checkpointNames } from "../../src/models/checkpoint-names.js";
import { profileFromConfig } from "../../src/models/profile.js";
import type { ModelProfile } from "../../src/models/types.js";
import { MODELS, numel, readConfig, safetensorsHeader } from "./checkpoint-files.js";

function profileOf(config: Record<string, unknown>, source = "test"): ModelProfile {
  const p = profileFromConfig(config, source);
  if (typeof p === "string") throw new Error(p);
  return p;
}

function paramMap(p: ModelProfile): Map<string, number[]> {
  const m = new Map<string, number[]>();
  for (const mod of p.modules) for (const par of mod.params) m.set(par.name, par.shape);
  return m;
}

/** The real checkpoints, and the tensors in them that torch does not count as parameters. */
const REAL = [
  { folder: "stories260K/hf", arch: "llama", buffers: [] as string[] },
  { folder: "tiny-chatglm2", arch: "chatglm2", buffers: ["transformer.rotary_pos_emb.inv_freq"] },
  { folder: "tiny-gpt2", arch: "gpt2", buffers: [] as string[] },
  { folder: "tiny-gpt2-d32", arch: "gpt2", buffers: [] as string[] },
];

describe("profiles against real checkpoints", () => {
  for (const { folder, arch, buffers } of REAL) {
    it(`${folder}: every parameter name and shape is a tensor of the file, and vice versa`, () => {
      const dir = join(MODELS, folder);
      const tensors = safetensorsHeader(join(dir, "model.safetensors"));
      const p = profileOf(readConfig(dir), dir);
      expect(p.arch).toBe(arch);
      const params = paramMap(p);
      const realParams = [...tensors.keys()].filter((n) => !buffers.includes(n)).sort();
      expect([...params.keys()].sort()).toEqual(realParams);
      for (const [name, shape] of params) expect(shape, name).toEqual(tensors.get(name)!.shape);
      // The buffers the file holds are the profile's buffers, with their shapes.
      for (const b of buffers) {
        const info = p.buffers?.find((x) => x.name === b);
        expect(info?.shape, b).toEqual(tensors.get(b)!.shape);
      }
      const total = realParams.reduce((s, n) => s + numel(tensors.get(n)!.shape), 0);
      expect(p.totalParams).toBe(total);
    });

    it(`${folder}: checkpoint names map onto the profile`, () => {
      const dir = join(MODELS, folder);
      const tensors = safetensorsHeader(join(dir, "model.safetensors"));
      const idx = checkpointNames(profileOf(readConfig(dir), dir));
      for (const [name, t] of tensors) {
        const got = idx.lookup(name);
        expect(got?.kind, name).toBe(buffers.includes(name) ? "buffer" : "param");
        if (got && got.kind !== "tied") expect(got.shape).toEqual(t.shape);
      }
    });
  }

  it("stories260K is tied: lm_head is a module with no parameter of its own", () => {
    const p = profileOf(readConfig(join(MODELS, "stories260K/hf")));
    const head = p.modules.find((m) => m.path === "lm_head")!;
    expect(head.params).toEqual([]);
    expect(head.tiedTo).toBe("model.embed_tokens.weight");
    expect(head.roles).toEqual(["head"]);
    expect(p.dims).toMatchObject({ numHeads: 8, numKvHeads: 4, headDim: 8, numLayers: 5, tiedEmbeddings: true, bosTokenId: 1, eosTokenId: 2 });
  });
});

describe("GPT-2 checkpoint name mapping", () => {
  const p = profileOf(readConfig(join(MODELS, "tiny-gpt2")));
  const idx = checkpointNames(p);
  it("maps names saved without the transformer. prefix (OpenAI's gpt2 files)", () => {
    expect(idx.lookup("h.1.attn.c_attn.weight")).toEqual({ kind: "param", name: "transformer.h.1.attn.c_attn.weight", shape: [2, 6] });
    expect(idx.lookup("wte.weight")).toEqual({ kind: "param", name: "transformer.wte.weight", shape: [50257, 2] });
  });
  it("recognises the causal-mask buffers and the tied head copy", () => {
    expect(idx.lookup("h.0.attn.bias")).toEqual({ kind: "buffer", name: "transformer.h.0.attn.bias", shape: [1, 1, 1024, 1024] });
    expect(idx.lookup("transformer.h.1.attn.masked_bias")?.kind).toBe("buffer");
    expect(idx.lookup("lm_head.weight")).toEqual({ kind: "tied", name: "lm_head.weight", tiedTo: "transformer.wte.weight" });
  });
  it("does not invent names", () => {
    expect(idx.lookup("h.2.attn.c_attn.weight")).toBeUndefined();
    expect(idx.lookup("transformer.transformer.wte.weight")).toBeUndefined();
  });
});

describe("ChatGLM2-6B", () => {
  const real = readConfig(join(MODELS, "chatglm2-6b-config"));
  const p = profileOf(real);
  const c = {
    h: 4096, layers: 28, heads: 32, kv: 128, groups: 2, ffn: 13696, vocab: 65024,
  };
  it("counts parameters as derived by hand from the config", () => {
    const qkvOut = c.heads * c.kv + 2 * c.groups * c.kv; // 4608
    const perLayer = c.h + (c.h * qkvOut + qkvOut) + c.heads * c.kv * c.h + c.h + c.h * 2 * c.ffn + c.ffn * c.h;
    expect(perLayer).toBe(203_960_832); // peft-methods.md §14.2
    const total = c.layers * perLayer + c.vocab * c.h /* embedding */ + c.vocab * c.h /* output_layer */ + c.h;
    expect(p.totalParams).toBe(total);
    expect(p.totalParams).toBe(6_243_584_000);
  });
  it("agrees with PEFT's print for AdaLoRA init_r=12 on query_key_value", () => {
    // "trainable params: 2,924,880 || all params: 6,246,508,908": all params = base + adapter + 28 ranknum scalars.
    const adapter = c.layers * 12 * (4096 + 4608 + 1);
    expect(adapter).toBe(2_924_880);
    expect(p.totalParams + adapter + c.layers).toBe(6_246_508_908);
  });
  it("has the module tree, shapes and slices of modeling_chatglm.py", () => {
    const byPath = new Map(p.modules.map((m) => [m.path, m]));
    const qkv = byPath.get("transformer.encoder.layers.27.self_attention.query_key_value")!;
    expect(qkv).toMatchObject({ kind: "linear", inFeatures: 4096, outFeatures: 4608, hasBias: true, layer: 27, transposed: false });
    expect(qkv.params).toEqual([
      { name: "transformer.encoder.layers.27.self_attention.query_key_value.weight", shape: [4608, 4096] },
      { name: "transformer.encoder.layers.27.self_attention.query_key_value.bias", shape: [4608] },
    ]);
    expect(byPath.get("transformer.encoder.layers.0.mlp.dense_h_to_4h")).toMatchObject({ outFeatures: 27392, hasBias: false });
    expect(byPath.get("transformer.encoder.layers.0.mlp.dense_4h_to_h")).toMatchObject({ inFeatures: 13696, outFeatures: 4096 });
    expect(byPath.get("transformer.output_layer")).toMatchObject({ roles: ["head"], outFeatures: 65024 });
    expect(byPath.get("transformer.output_layer")!.params).toHaveLength(1);
    expect(p.sliceRoles).toEqual([
      { role: "q", module: "query_key_value", rowStart: 0, rowEnd: 4096 },
      { role: "k", module: "query_key_value", rowStart: 4096, rowEnd: 4352 },
      { role: "v", module: "query_key_value", rowStart: 4352, rowEnd: 4608 },
    ]);
    expect(p.buffers).toEqual([{ name: "transformer.rotary_pos_emb.inv_freq", shape: [32] }]);
    expect(p.layerContainer).toBe("transformer.encoder.layers");
    expect(p.feedforward).toEqual(["dense_4h_to_h"]);
    expect(p.modelType).toBe("chatglm");
    expect(p.chatTemplate).toBe("[Round {round}]\n\n问：{prompt}\n\n答：");
    expect(p.dims).toMatchObject({ numKvHeads: 2, headDim: 128, intermediateSize: 13696, vocabSize: 65024, maxPositions: 32768, eosTokenId: 2 });
  });
  it("matches the §14.3 counts: BitFit on qkv biases and IA3 on qkv + dense_4h_to_h", () => {
    const qkvBiases = p.modules.filter((m) => m.path.endsWith("query_key_value")).reduce((s, m) => s + m.outFeatures, 0);
    expect(qkvBiases).toBe(129_024);
    const ia3 = p.modules
      .filter((m) => m.path.endsWith("query_key_value") || m.path.endsWith("dense_4h_to_h"))
      .reduce((s, m) => s + (m.path.endsWith("dense_4h_to_h") ? m.inFeatures : m.outFeatures), 0);
    expect(ia3).toBe(512_512);
  });
  it("lists modules in the order torch registers them", () => {
    expect(p.modules.slice(0, 7).map((m) => m.path)).toEqual([
      "transformer.embedding.word_embeddings",
      "transformer.encoder.layers.0.input_layernorm",
      "transformer.encoder.layers.0.self_attention.query_key_value",
      "transformer.encoder.layers.0.self_attention.dense",
      "transformer.encoder.layers.0.post_attention_layernorm",
      "transformer.encoder.layers.0.mlp.dense_h_to_4h",
      "transformer.encoder.layers.0.mlp.dense_4h_to_h",
    ]);
    expect(p.modules.slice(-2).map((m) => m.path)).toEqual(["transformer.encoder.final_layernorm", "transformer.output_layer"]);
  });
});

describe("Llama family", () => {
  it("Llama-2-7B has 6,738,415,616 parameters (untied head)", () => {
    const p = profileOf(builtinConfig("llama-2-7b")!);
    // 32 * (4*4096^2 + 3*4096*11008 + 2*4096) + 2*32000*4096 + 4096
    expect(p.totalParams).toBe(32 * (4 * 4096 * 4096 + 3 * 4096 * 11008 + 2 * 4096) + 2 * 32000 * 4096 + 4096);
    expect(p.totalParams).toBe(6_738_415_616);
    expect(p.modules.find((m) => m.path === "lm_head")!.params).toEqual([{ name: "lm_head.weight", shape: [32000, 4096] }]);
  });
  it("orders each layer as LlamaDecoderLayer registers it", () => {
    const p = profileOf(builtinConfig("tiny-llama")!);
    expect(p.modules.filter((m) => m.layer === 1).map((m) => m.path.slice("model.layers.1.".length))).toEqual([
      "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
      "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj", "input_layernorm", "post_attention_layernorm",
    ]);
  });
  it("Qwen2 has q/k/v bias and none on o_proj; GQA and head_dim shape k/v", () => {
    const p = profileOf({
      model_type: "qwen2", hidden_size: 896, num_hidden_layers: 2, num_attention_heads: 14, num_key_value_heads: 2,
      intermediate_size: 4864, vocab_size: 151936, tie_word_embeddings: true,
    });
    expect(p.name).toBe("qwen2");
    const l0 = (leaf: string) => p.modules.find((m) => m.path === `model.layers.0.${leaf}`)!;
    expect(l0("self_attn.q_proj").params.map((x) => x.shape)).toEqual([[896, 896], [896]]);
    expect(l0("self_attn.k_proj").params.map((x) => x.shape)).toEqual([[128, 896], [128]]);
    expect(l0("self_attn.o_proj").hasBias).toBe(false);
    expect(l0("mlp.gate_proj").hasBias).toBe(false);
    // Qwen2-0.5B: 494,032,768 parameters, tied.
    const full = profileOf({ ...p.config, num_hidden_layers: 24 });
    expect(full.totalParams).toBe(494_032_768);
  });
  it("Llama attention_bias/mlp_bias and an explicit head_dim", () => {
    const p = profileOf({
      model_type: "llama", hidden_size: 64, num_hidden_layers: 1, num_attention_heads: 4, num_key_value_heads: 1,
      head_dim: 32, intermediate_size: 100, vocab_size: 10, attention_bias: true, mlp_bias: true,
    });
    const q = p.modules.find((m) => m.path.endsWith("q_proj"))!;
    const o = p.modules.find((m) => m.path.endsWith("o_proj"))!;
    expect(q.params.map((x) => x.shape)).toEqual([[128, 64], [128]]);
    expect(p.modules.find((m) => m.path.endsWith("k_proj"))!.outFeatures).toBe(32);
    expect(o.params.map((x) => x.shape)).toEqual([[64, 128], [64]]);
    expect(p.modules.find((m) => m.path.endsWith("down_proj"))!.hasBias).toBe(true);
  });
  it("mistral shares the llama tree", () => {
    const p = profileOf({ ...builtinConfig("tiny-llama")!, model_type: "mistral" });
    expect(p.arch).toBe("llama");
    expect(p.modelType).toBe("mistral");
  });
  it("roles and template", () => {
    const p = profileOf(builtinConfig("tiny-llama")!);
    const roles = (leaf: string) => p.modules.find((m) => m.path.endsWith(leaf))!.roles;
    expect(roles("gate_proj")).toEqual(["ffn_in", "ffn_gate", "linear"]);
    expect(roles("up_proj")).toEqual(["ffn_in", "ffn_up", "linear"]);
    expect(roles("down_proj")).toEqual(["ffn_out", "linear"]);
    expect(roles("o_proj")).toEqual(["attn_out", "linear"]);
    expect(roles("model.norm")).toEqual(["norm"]);
    expect(p.feedforward).toEqual(["down_proj"]);
    expect(p.chatTemplate).toBe("[INST] {prompt} [/INST]");
  });
});

describe("GPT-2", () => {
  it("gpt2 (124M) has 124,439,808 parameters, tied head counted once", () => {
    const p = profileOf(builtinConfig("gpt2")!);
    const d = 768;
    const perLayer = 4 * d /* ln_1, ln_2 */ + (d * 3 * d + 3 * d) + (d * d + d) + (d * 4 * d + 4 * d) + (4 * d * d + d);
    expect(p.totalParams).toBe(12 * perLayer + 50257 * d + 1024 * d + 2 * d);
    expect(p.totalParams).toBe(124_439_808);
  });
  it("Conv1D weights are [in, out] and flagged transposed; slices are output ranges of c_attn", () => {
    const p = profileOf(builtinConfig("tiny-gpt2")!);
    const fc = p.modules.find((m) => m.path === "transformer.h.0.mlp.c_fc")!;
    expect(fc).toMatchObject({ transposed: true, inFeatures: 64, outFeatures: 256, hasBias: true });
    expect(fc.params.map((x) => x.shape)).toEqual([[64, 256], [256]]);
    expect(p.modules.find((m) => m.path === "lm_head")).toMatchObject({ transposed: false, params: [], tiedTo: "transformer.wte.weight" });
    expect(p.sliceRoles.map((s) => [s.role, s.rowStart, s.rowEnd])).toEqual([["q", 0, 64], ["k", 64, 128], ["v", 128, 192]]);
    expect(p.feedforward).toEqual(["mlp.c_proj"]);
    expect(p.chatTemplate).toBe("{prompt}");
  });
  it("an untied GPT-2 has an lm_head weight", () => {
    const p = profileOf({ ...builtinConfig("tiny-gpt2")!, tie_word_embeddings: false });
    expect(p.modules.at(-1)!.params).toEqual([{ name: "lm_head.weight", shape: [320, 64] }]);
  });
});

describe("profileFromConfig errors", () => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ["no model_type", { hidden_size: 4 }, /no model_type/],
    ["unknown model_type", { model_type: "bert" }, /unsupported model_type 'bert'.*llama, mistral, qwen2, chatglm, gpt2/],
    ["missing key", { model_type: "llama", hidden_size: 64 }, /no num_hidden_layers/],
    ["bad value", { ...builtinConfig("tiny-gpt2")!, n_layer: -1 }, /n_layer must be a positive integer/],
    ["indivisible", { ...builtinConfig("tiny-gpt2")!, n_head: 5 }, /not divisible/],
    ["chatglm v1", { model_type: "chatglm", hidden_size: 4096, inner_hidden_size: 16384 }, /ChatGLM2/],
    ["kv heads", { ...builtinConfig("tiny-llama")!, num_key_value_heads: 3 }, /not a multiple/],
  ];
  for (const [what, cfg, re] of cases) {
    it(what, () => {
      const p = profileFromConfig(cfg, "x");
      expect(typeof p).toBe("string");
      expect(p).toMatch(re);
    });
  }
});
