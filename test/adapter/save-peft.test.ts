/**
 * Saving in PEFT's layout: adapter_config.json byte for byte where the whole file is known (the seed
 * case), the fields PEFT reads otherwise, and the safetensors keys and shapes PEFT's
 * get_peft_model_state_dict produces (peft-methods.md §16.3), written out by hand.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readSafetensorsHeader, readTensorF32 } from "../../src/runtime/io/index.js";
import { adapterFiles, patternMatch, peftFeedforward, peftMatches, saveAdapter } from "../../src/runtime/adapter/index.js";
import { build, fillValues, scratch, STORIES } from "./helpers.js";

const SEED = "adalora r=8 alpha=32 dropout=0.01 on query_key_value { init_r = 12; tinit = 3 steps; tfinal = 3 steps; delta_t = 10 steps; }";

/** The seed case's adapter_config.json as PEFT's json.dumps(indent=2, sort_keys=True) writes it. */
const SEED_CONFIG = `{
  "alpha_pattern": {},
  "auto_mapping": null,
  "base_model_name_or_path": "THUDM/chatglm2-6b",
  "beta1": 0.85,
  "beta2": 0.85,
  "bias": "none",
  "deltaT": 10,
  "fan_in_fan_out": false,
  "inference_mode": true,
  "init_lora_weights": true,
  "init_r": 12,
  "layer_replication": null,
  "layers_pattern": null,
  "layers_to_transform": null,
  "loftq_config": {},
  "lora_alpha": 32,
  "lora_dropout": 0.01,
  "megatron_config": null,
  "megatron_core": "megatron.core",
  "modules_to_save": null,
  "orth_reg_weight": 0.5,
  "peft_type": "ADALORA",
  "r": 8,
  "rank_pattern": null,
  "revision": null,
  "target_modules": [
    "query_key_value"
  ],
  "target_r": 8,
  "task_type": "CAUSAL_LM",
  "tfinal": 3,
  "tinit": 3,
  "total_step": 15,
  "use_dora": false,
  "use_rslora": false
}`;

async function header(dir: string) {
  return readSafetensorsHeader(join(dir, "adapter_model.safetensors"));
}

function shapes(h: Awaited<ReturnType<typeof header>>): Record<string, number[]> {
  return Object.fromEntries(h.tensors.map((t) => [t.name, t.shape]));
}

describe("the seed case: adalora on ChatGLM2's query_key_value", () => {
  it("writes PEFT's adapter_config.json byte for byte, and PEFT's keys", async () => {
    const b = build("builtin:tiny-chatglm2", SEED);
    const values = fillValues(b.graph);
    const dir = join(scratch(), "seed");
    const layout = await saveAdapter(dir, { ...b, values, baseModel: "THUDM/chatglm2-6b", extra: { totalStep: 15 } });
    expect(layout.peftType).toBe("ADALORA");
    const text = await readFile(join(dir, "adapter_config.json"), "utf8");
    expect(text).toBe(SEED_CONFIG);
    const h = await header(dir);
    const L = "base_model.model.transformer.encoder.layers";
    const qkv = "self_attention.query_key_value";
    expect(shapes(h)).toEqual({
      [`${L}.0.${qkv}.lora_A`]: [12, 64], [`${L}.0.${qkv}.lora_E`]: [12, 1], [`${L}.0.${qkv}.lora_B`]: [128, 12],
      [`${L}.1.${qkv}.lora_A`]: [12, 64], [`${L}.1.${qkv}.lora_E`]: [12, 1], [`${L}.1.${qkv}.lora_B`]: [128, 12],
    });
    expect(h.tensors.every((t) => t.dtype === "F32")).toBe(true);
    expect(h.metadata.format).toBe("pt");
    expect(JSON.parse(h.metadata.pefc!)).toEqual({ format_version: 1, language_version: "0.1", spec_file: "case.peft", layout: "ADALORA" });
    const a0 = await readTensorF32(h.tensors.find((t) => t.name === `${L}.0.${qkv}.lora_A`)!);
    expect(Array.from(a0)).toEqual(Array.from(values.get(`transformer.encoder.layers.0.${qkv}.lora_A`)!));
  });

  it("with a rank pattern: the pattern keyed <module>.lora_E, tensors pruned to the kept triplets", async () => {
    const b = build("builtin:tiny-chatglm2", SEED);
    const values = fillValues(b.graph);
    const m0 = "transformer.encoder.layers.0.self_attention.query_key_value";
    const m1 = "transformer.encoder.layers.1.self_attention.query_key_value";
    const keep0 = [true, false, true, true, false, false, true, true, true, false, true, true]; // 8 kept
    const keep1 = [false, false, false, true, true, false, false, true, false, false, true, true]; // 5 kept
    const f = adapterFiles({ ...b, values, baseModel: "m", extra: { totalStep: 15, rankPattern: { [`${m0}.lora_E`]: keep0, [m1]: keep1 } } });
    const cfg = JSON.parse(f.config) as Record<string, unknown>;
    expect(cfg.rank_pattern).toEqual({ [`${m0}.lora_E`]: keep0, [`${m1}.lora_E`]: keep1 });
    expect(Object.fromEntries(f.tensors.map((t) => [t.name, t.shape]))).toEqual({
      [`base_model.model.${m0}.lora_A`]: [8, 64], [`base_model.model.${m0}.lora_E`]: [8, 1], [`base_model.model.${m0}.lora_B`]: [128, 8],
      [`base_model.model.${m1}.lora_A`]: [5, 64], [`base_model.model.${m1}.lora_E`]: [5, 1], [`base_model.model.${m1}.lora_B`]: [128, 5],
    });
    // lora_B of layer 1 keeps columns 3, 4, 7, 10, 11: check row 2 by hand.
    const B = values.get(`${m1}.lora_B`)!;
    const saved = f.tensors.find((t) => t.name === `base_model.model.${m1}.lora_B`)!.data as Float32Array;
    expect(Array.from(saved.subarray(2 * 5, 3 * 5))).toEqual([3, 4, 7, 10, 11].map((c) => B[2 * 12 + c]!));
    const A = values.get(`${m1}.lora_A`)!;
    const savedA = f.tensors.find((t) => t.name === `base_model.model.${m1}.lora_A`)!.data as Float32Array;
    expect(Array.from(savedA.subarray(64, 128))).toEqual(Array.from(A.subarray(4 * 64, 5 * 64)));
  });
});

describe("lora", () => {
  it("tiny-llama q_proj, v_proj: PEFT keys, torch [out,in] shapes, fields", () => {
    const b = build("builtin:tiny-llama", "lora r=8 alpha=16 dropout=0.05 on q_proj, v_proj;");
    const f = adapterFiles({ ...b, values: fillValues(b.graph), baseModel: "builtin:tiny-llama" });
    const cfg = JSON.parse(f.config) as Record<string, unknown>;
    expect(cfg).toMatchObject({
      peft_type: "LORA", task_type: "CAUSAL_LM", r: 8, lora_alpha: 16, lora_dropout: 0.05, target_modules: ["q_proj", "v_proj"],
      fan_in_fan_out: false, bias: "none", use_rslora: false, init_lora_weights: true, rank_pattern: {}, alpha_pattern: {},
      layers_to_transform: null, inference_mode: true, modules_to_save: null, base_model_name_or_path: "builtin:tiny-llama",
    });
    expect(f.config).toContain('"lora_dropout": 0.05,');
    const L = "base_model.model.model.layers";
    expect(Object.fromEntries(f.tensors.map((t) => [t.name, t.shape]))).toEqual({
      [`${L}.0.self_attn.q_proj.lora_A.weight`]: [8, 64], [`${L}.0.self_attn.q_proj.lora_B.weight`]: [64, 8],
      [`${L}.0.self_attn.v_proj.lora_A.weight`]: [8, 64], [`${L}.0.self_attn.v_proj.lora_B.weight`]: [32, 8],
      [`${L}.1.self_attn.q_proj.lora_A.weight`]: [8, 64], [`${L}.1.self_attn.q_proj.lora_B.weight`]: [64, 8],
      [`${L}.1.self_attn.v_proj.lora_A.weight`]: [8, 64], [`${L}.1.self_attn.v_proj.lora_B.weight`]: [32, 8],
    });
  });

  it("stories260K (real config) with PEFT's default targets: five layers of q_proj and v_proj", () => {
    const b = build(STORIES, "lora;");
    const f = adapterFiles({ ...b, values: fillValues(b.graph), baseModel: "stories260K" });
    const cfg = JSON.parse(f.config) as Record<string, unknown>;
    expect(cfg).toMatchObject({ r: 8, lora_alpha: 8, lora_dropout: 0, target_modules: ["q_proj", "v_proj"] });
    expect(f.config).toContain('"lora_dropout": 0.0,');
    const want: Record<string, number[]> = {};
    for (let l = 0; l < 5; l++) {
      want[`base_model.model.model.layers.${l}.self_attn.q_proj.lora_A.weight`] = [8, 64];
      want[`base_model.model.model.layers.${l}.self_attn.q_proj.lora_B.weight`] = [64, 8];
      want[`base_model.model.model.layers.${l}.self_attn.v_proj.lora_A.weight`] = [8, 64];
      want[`base_model.model.model.layers.${l}.self_attn.v_proj.lora_B.weight`] = [32, 8];
    }
    expect(Object.fromEntries(f.tensors.map((t) => [t.name, t.shape]))).toEqual(want);
  });

  it("a layer subset becomes layers_to_transform; overrides become rank/alpha patterns PEFT matches to one module each", () => {
    const b = build(STORIES, "lora r=8 alpha=16 on q_proj in layers[3:], v_proj in layers[3:] {\n override v_proj in layers[4] { r = 4; alpha = 8.5; }\n}");
    const f = adapterFiles({ ...b, values: fillValues(b.graph), baseModel: "s" });
    const cfg = JSON.parse(f.config) as Record<string, unknown>;
    expect(cfg).toMatchObject({
      target_modules: ["q_proj", "v_proj"], layers_to_transform: [3, 4], layers_pattern: "layers",
      rank_pattern: { "layers.4.self_attn.v_proj": 4 }, alpha_pattern: { "layers.4.self_attn.v_proj": 8.5 },
    });
    const hit = peftMatches(b.profile, { targetModules: ["q_proj", "v_proj"], layersToTransform: [3, 4], layersPattern: "layers" });
    expect(hit).toEqual(["model.layers.3.self_attn.q_proj", "model.layers.3.self_attn.v_proj", "model.layers.4.self_attn.q_proj", "model.layers.4.self_attn.v_proj"]);
    for (const legacy of [false, true]) {
      expect(hit.filter((p) => patternMatch(["layers.4.self_attn.v_proj"], p, legacy))).toEqual(["model.layers.4.self_attn.v_proj"]);
    }
    expect(f.tensors.find((t) => t.name === "base_model.model.model.layers.4.self_attn.v_proj.lora_A.weight")!.shape).toEqual([4, 64]);
    expect(f.tensors).toHaveLength(8);
  });

  it("a selection that names modules in one layer only gets suffixes that start at a module name", () => {
    const b = build(STORIES, "lora on q_proj, v_proj in layers[1];");
    const cfg = JSON.parse(adapterFiles({ ...b, values: fillValues(b.graph), baseModel: "s" }).config) as Record<string, unknown>;
    expect(cfg.target_modules).toEqual(["layers.1.self_attn.v_proj", "q_proj"]);
    expect(cfg.layers_to_transform).toBeNull();
    expect(peftMatches(b.profile, { targetModules: cfg.target_modules as string[] })).toEqual([
      "model.layers.0.self_attn.q_proj", "model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.v_proj",
      "model.layers.2.self_attn.q_proj", "model.layers.3.self_attn.q_proj", "model.layers.4.self_attn.q_proj",
    ]);
  });

  it("GPT-2's Conv1D c_attn: fan_in_fan_out, A and B still in torch's layout", () => {
    const b = build("builtin:tiny-gpt2", "lora r=4 alpha=8 rslora=true on c_attn { init = gaussian; }");
    const f = adapterFiles({ ...b, values: fillValues(b.graph), baseModel: "gpt2" });
    expect(JSON.parse(f.config)).toMatchObject({ fan_in_fan_out: true, target_modules: ["c_attn"], use_rslora: true, init_lora_weights: "gaussian", r: 4 });
    expect(Object.fromEntries(f.tensors.map((t) => [t.name, t.shape]))).toEqual({
      "base_model.model.transformer.h.0.attn.c_attn.lora_A.weight": [4, 64], "base_model.model.transformer.h.0.attn.c_attn.lora_B.weight": [192, 4],
      "base_model.model.transformer.h.1.attn.c_attn.lora_A.weight": [4, 64], "base_model.model.transformer.h.1.attn.c_attn.lora_B.weight": [192, 4],
    });
  });

  it("bias = lora_only saves the wrapped modules' biases as base_layer.bias", () => {
    const b = build("builtin:tiny-chatglm2", "lora r=2 on query_key_value { bias = lora_only; }");
    const f = adapterFiles({ ...b, values: fillValues(b.graph), baseModel: "g" });
    expect(JSON.parse(f.config)).toMatchObject({ peft_type: "LORA", bias: "lora_only" });
    const names = f.tensors.map((t) => t.name).filter((n) => n.endsWith("bias"));
    expect(names).toEqual([
      "base_model.model.transformer.encoder.layers.0.self_attention.query_key_value.base_layer.bias",
      "base_model.model.transformer.encoder.layers.1.self_attention.query_key_value.base_layer.bias",
    ]);
  });
});

describe("ia3", () => {
  it("GPT-2 default targets: c_attn scaled on the output, mlp.c_proj on the input", () => {
    const b = build("builtin:tiny-gpt2", "ia3;");
    const f = adapterFiles({ ...b, values: fillValues(b.graph), baseModel: "gpt2" });
    const cfg = JSON.parse(f.config) as Record<string, unknown>;
    expect(cfg).toMatchObject({ peft_type: "IA3", target_modules: ["c_attn", "mlp.c_proj"], feedforward_modules: ["mlp.c_proj"], fan_in_fan_out: true, init_ia3_weights: true });
    const targeted = peftMatches(b.profile, { targetModules: cfg.target_modules as string[] });
    expect(targeted).toEqual(["transformer.h.0.attn.c_attn", "transformer.h.0.mlp.c_proj", "transformer.h.1.attn.c_attn", "transformer.h.1.mlp.c_proj"]);
    expect(peftFeedforward(targeted, cfg.feedforward_modules as string[])).toEqual(["transformer.h.0.mlp.c_proj", "transformer.h.1.mlp.c_proj"]);
    expect(Object.fromEntries(f.tensors.map((t) => [t.name, t.shape]))).toEqual({
      "base_model.model.transformer.h.0.attn.c_attn.ia3_l": [192, 1], "base_model.model.transformer.h.0.mlp.c_proj.ia3_l": [1, 256],
      "base_model.model.transformer.h.1.attn.c_attn.ia3_l": [192, 1], "base_model.model.transformer.h.1.mlp.c_proj.ia3_l": [1, 256],
    });
  });

  it("llama default targets k_proj, v_proj, down_proj with down_proj feed-forward", () => {
    const b = build("builtin:tiny-llama", "ia3;");
    const f = adapterFiles({ ...b, values: fillValues(b.graph), baseModel: "l" });
    expect(JSON.parse(f.config)).toMatchObject({ target_modules: ["down_proj", "k_proj", "v_proj"], feedforward_modules: ["down_proj"], fan_in_fan_out: false });
    expect(f.tensors.find((t) => t.name === "base_model.model.model.layers.1.mlp.down_proj.ia3_l")!.shape).toEqual([1, 128]);
    expect(f.tensors.find((t) => t.name === "base_model.model.model.layers.1.self_attn.k_proj.ia3_l")!.shape).toEqual([32, 1]);
  });
});

describe("prompt learning", () => {
  it("prefix without projection: prompt_embeddings is the table itself, [P, 2·L·kv heads·head dim]", () => {
    const b = build("builtin:tiny-llama", "prefix tokens=4 { projection = false; }");
    const values = fillValues(b.graph);
    const f = adapterFiles({ ...b, values, baseModel: "l" });
    expect(JSON.parse(f.config)).toMatchObject({
      peft_type: "PREFIX_TUNING", num_virtual_tokens: 4, token_dim: 32, num_attention_heads: 2, num_layers: 2,
      encoder_hidden_size: 32, prefix_projection: false, num_transformer_submodules: 1,
    });
    expect(f.tensors.map((t) => [t.name, t.shape])).toEqual([["prompt_embeddings", [4, 128]]]);
    expect(f.tensors[0]!.data).toBe(values.get("prefix_encoder.embedding.weight"));
  });

  it("prefix with projection: prompt_embeddings is the MLP's output, computed here by hand", () => {
    const b = build("builtin:tiny-llama", "prefix tokens=3 { projection = true; hidden = 5; }");
    const v = fillValues(b.graph);
    const f = adapterFiles({ ...b, values: v, baseModel: "l" });
    expect(JSON.parse(f.config)).toMatchObject({ prefix_projection: true, encoder_hidden_size: 5 });
    const out = f.tensors[0]!;
    expect(out.shape).toEqual([3, 128]);
    const emb = v.get("prefix_encoder.embedding.weight")!, w0 = v.get("prefix_encoder.transform.0.weight")!, b0 = v.get("prefix_encoder.transform.0.bias")!;
    const w2 = v.get("prefix_encoder.transform.2.weight")!, b2 = v.get("prefix_encoder.transform.2.bias")!;
    let worst = 0;
    for (let p = 0; p < 3; p++) {
      const t = Array.from({ length: 5 }, (_, j) => Math.tanh(b0[j]! + Array.from({ length: 32 }, (_, k) => emb[p * 32 + k]! * w0[j * 32 + k]!).reduce((a, c) => a + c, 0)));
      for (let o = 0; o < 128; o++) {
        const want = b2[o]! + t.reduce((a, tj, j) => a + tj * w2[o * 5 + j]!, 0);
        worst = Math.max(worst, Math.abs(want - (out.data as Float32Array)[p * 128 + o]!));
      }
    }
    console.log(`prefix projection: max |saved − hand MLP| = ${worst.toExponential(2)}`);
    expect(worst).toBeLessThan(1e-5);
  });

  it("p_tuning: the MLP encoder's output [T, D]; the MLP itself is not saved", () => {
    const b = build("builtin:tiny-gpt2", "p_tuning tokens=5 { hidden = 6; }");
    const f = adapterFiles({ ...b, values: fillValues(b.graph), baseModel: "g" });
    expect(JSON.parse(f.config)).toMatchObject({
      peft_type: "P_TUNING", num_virtual_tokens: 5, token_dim: 64, encoder_hidden_size: 6, encoder_reparameterization_type: "MLP", encoder_num_layers: 2, encoder_dropout: 0,
    });
    expect(f.config).toContain('"encoder_dropout": 0.0,');
    expect(f.tensors.map((t) => [t.name, t.shape])).toEqual([["prompt_embeddings", [5, 64]]]);
  });

  it("prompt_tuning from text: TEXT with the init text and a tokenizer, non-ASCII escaped as Python does", () => {
    const encode = (t: string) => Array.from(Buffer.from(t, "utf8"), (x) => x + 3);
    const b = build("builtin:tiny-llama", 'prompt_tuning tokens=6 init="答：ok";', { encode });
    const f = adapterFiles({ ...b, values: fillValues(b.graph), baseModel: "meta/llama" });
    expect(JSON.parse(f.config)).toMatchObject({ peft_type: "PROMPT_TUNING", prompt_tuning_init: "TEXT", prompt_tuning_init_text: "答：ok", tokenizer_name_or_path: "meta/llama", num_virtual_tokens: 6, token_dim: 64 });
    expect(f.config).toContain('"prompt_tuning_init_text": "\\u7b54\\uff1aok",');
    expect(f.tensors.map((t) => [t.name, t.shape])).toEqual([["prompt_embeddings", [6, 64]]]);
  });

  it("prompt_tuning from the vocabulary is SAMPLE_VOCAB", () => {
    const b = build("builtin:tiny-llama", "prompt_tuning tokens=2 init=vocab;");
    expect(JSON.parse(adapterFiles({ ...b, values: fillValues(b.graph), baseModel: "l" }).config)).toMatchObject({ prompt_tuning_init: "SAMPLE_VOCAB", prompt_tuning_init_text: null });
  });
});
