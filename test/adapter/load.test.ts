/**
 * Loading adapter folders back for `init from`: round trips for every layout, PEFC folders for what
 * PEFT cannot express, folders written the way PEFT writes them (F16 tensors, pruned AdaLoRA), and
 * each refusal naming the file, the tensor and what to change.
 */
import { mkdir, readFile, rm, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { UserError, writeSafetensors } from "../../src/runtime/io/index.js";
import { loadAdapter, saveAdapter } from "../../src/runtime/adapter/index.js";
import { build, fillValues, scratch, STORIES, type Built } from "./helpers.js";

const SEED = "adalora r=8 alpha=32 dropout=0.01 on query_key_value { init_r = 12; tinit = 3 steps; tfinal = 3 steps; delta_t = 10 steps; }";

async function saved(b: Built, values = fillValues(b.graph)): Promise<{ dir: string; values: Map<string, Float32Array> }> {
  const dir = join(scratch(), "a");
  await saveAdapter(dir, { ...b, values, baseModel: "m", extra: { totalStep: 15 } });
  return { dir, values };
}

async function refusal(p: Promise<unknown>): Promise<UserError> {
  const e = await p.then(() => undefined, (x: unknown) => x);
  expect(e).toBeInstanceOf(UserError);
  return e as UserError;
}

const CASES: [string, string, string, string][] = [
  ["lora, llama", "builtin:tiny-llama", "lora r=4 on q_proj, v_proj { override v_proj { r = 2; } }", "LORA"],
  ["lora with bias=all, gpt2", "builtin:tiny-gpt2", "lora on c_attn { bias = all; }", "LORA"],
  ["adalora, the seed case", "builtin:tiny-chatglm2", SEED, "ADALORA"],
  ["ia3, gpt2", "builtin:tiny-gpt2", "ia3;", "IA3"],
  ["prefix without projection, stories260K", STORIES, "prefix tokens=3 { projection = false; }", "PREFIX_TUNING"],
  ["p_tuning_v2, chatglm2", "builtin:tiny-chatglm2", "p_tuning_v2 tokens=2;", "PREFIX_TUNING"],
  ["prompt tuning", "builtin:tiny-llama", "prompt_tuning tokens=4;", "PROMPT_TUNING"],
  ["bitfit (PEFC)", "builtin:tiny-gpt2", "bitfit;", "PEFC"],
  ["houlsby adapters (PEFC)", "builtin:tiny-llama", "adapter houlsby { bottleneck = 4; }", "PEFC"],
  ["unipelt (PEFC)", "builtin:tiny-llama", "unipelt;", "PEFC"],
  ["two methods (PEFC)", "builtin:tiny-llama", "lora on q_proj;\nia3 on k_proj;\nunfreeze model.norm;", "PEFC"],
  ["prefix on some layers (PEFC)", STORIES, "prefix tokens=2 on layers[1:3] { projection = true; hidden = 4; }", "PEFC"],
];

describe("save → load gives back identical values", () => {
  for (const [what, model, body, type] of CASES) {
    it(what, async () => {
      const b = build(model, body);
      const { dir, values } = await saved(b);
      const cfg = JSON.parse(await readFile(join(dir, "adapter_config.json"), "utf8")) as Record<string, unknown>;
      expect(cfg.peft_type).toBe(type);
      const got = await loadAdapter(dir, b);
      const expectedNames = [...values.keys()].filter((n) => !n.endsWith(".ranknum")).sort();
      expect([...got.keys()].sort()).toEqual(expectedNames);
      for (const n of expectedNames) expect(Array.from(got.get(n)!), n).toEqual(Array.from(values.get(n)!));
    });
  }
});

describe("folders as PEFT writes them", () => {
  it("F16 and BF16 tensors are widened to f32", async () => {
    const b = build("builtin:tiny-llama", "lora r=2 on q_proj;");
    const { dir } = await saved(b);
    const keys = [0, 1].flatMap((l) => [`model.layers.${l}.self_attn.q_proj.lora_A.weight`, `model.layers.${l}.self_attn.q_proj.lora_B.weight`]);
    const vals = keys.map((k, i) => Float32Array.from({ length: k.endsWith("A.weight") ? 128 : 128 }, (_, j) => (j - 64) / 64 + i));
    await writeSafetensors(join(dir, "adapter_model.safetensors"), keys.map((k, i) => ({
      name: `base_model.model.${k}`, dtype: i % 2 ? "BF16" : "F16", shape: k.endsWith("A.weight") ? [2, 64] : [64, 2], data: vals[i]!,
    })), { format: "pt" });
    const got = await loadAdapter(dir, b);
    // Every value is a multiple of 1/64 below 4: exact in both half formats.
    keys.forEach((k, i) => expect(Array.from(got.get(k)!)).toEqual(Array.from(vals[i]!)));
  });

  it("adalora saved with a rank pattern comes back at init_r, masked rows and columns zero", async () => {
    const b = build("builtin:tiny-chatglm2", SEED);
    const values = fillValues(b.graph);
    const m0 = "transformer.encoder.layers.0.self_attention.query_key_value";
    const m1 = "transformer.encoder.layers.1.self_attention.query_key_value";
    const keep0 = Array.from({ length: 12 }, (_, i) => i % 3 !== 1);
    const keep1 = Array.from({ length: 12 }, (_, i) => i >= 9);
    const dir = join(scratch(), "ada");
    await saveAdapter(dir, { ...b, values, baseModel: "m", extra: { totalStep: 15, rankPattern: { [m0]: keep0, [m1]: keep1 } } });
    const got = await loadAdapter(dir, b);
    for (const [m, keep] of [[m0, keep0], [m1, keep1]] as const) {
      const A = got.get(`${m}.lora_A`)!, B = got.get(`${m}.lora_B`)!, E = got.get(`${m}.lora_E`)!;
      const A0 = values.get(`${m}.lora_A`)!, B0 = values.get(`${m}.lora_B`)!, E0 = values.get(`${m}.lora_E`)!;
      expect(A.length).toBe(12 * 64);
      for (let k = 0; k < 12; k++) {
        expect(E[k]).toBe(keep[k] ? E0[k] : 0);
        expect(Array.from(A.subarray(k * 64, (k + 1) * 64))).toEqual(keep[k] ? Array.from(A0.subarray(k * 64, (k + 1) * 64)) : new Array(64).fill(0));
        for (let o = 0; o < 128; o += 37) expect(B[o * 12 + k]).toBe(keep[k] ? B0[o * 12 + k] : 0);
      }
    }
  });

  it("a P_TUNING folder continues as prompt_tuning (the table is the encoder's output)", async () => {
    const pt = build("builtin:tiny-llama", "p_tuning tokens=3 { hidden = 8; }");
    const { dir } = await saved(pt);
    const prompt = build("builtin:tiny-llama", "prompt_tuning tokens=3;");
    const got = await loadAdapter(dir, prompt);
    expect([...got.keys()]).toEqual(["prompt_encoder.embedding.weight"]);
    expect(got.get("prompt_encoder.embedding.weight")!.length).toBe(3 * 64);
    const e = await refusal(loadAdapter(dir, pt));
    expect(e.message).toContain("prompt_tuning tokens=3");
  });

  it("a projected prefix saved in PEFT's layout continues only with projection = false", async () => {
    const proj = build("builtin:tiny-llama", "prefix tokens=3 { projection = true; hidden = 8; }");
    const { dir } = await saved(proj);
    const e = await refusal(loadAdapter(dir, proj));
    expect(e.message).toMatch(/adapter_config\.json: .*projection = false/);
    const flat = build("builtin:tiny-llama", "prefix tokens=3 { projection = false; }");
    const got = await loadAdapter(dir, flat);
    expect(got.get("prefix_encoder.embedding.weight")!.length).toBe(3 * 128);
  });
});

describe("refusals", () => {
  it("an adapter of another method", async () => {
    const { dir } = await saved(build("builtin:tiny-llama", "lora on q_proj;"));
    const e = await refusal(loadAdapter(dir, build("builtin:tiny-llama", "ia3 on q_proj;")));
    expect(e.message).toBe(`${join(dir, "adapter_config.json")}: the adapter is lora (peft_type LORA) but the spec trains ia3; init from needs an adapter of the spec's own method`);
    expect(e.file).toBe(join(dir, "adapter_config.json"));
  });

  it("another rank: names the tensor and both shapes", async () => {
    const { dir } = await saved(build("builtin:tiny-llama", "lora r=8 on q_proj;"));
    const e = await refusal(loadAdapter(dir, build("builtin:tiny-llama", "lora r=4 on q_proj;")));
    expect(e.tensor).toBe("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight");
    expect(e.message).toContain("tensor 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight' has shape [8, 64] but the spec's model.layers.0.self_attn.q_proj.lora_A.weight needs [4, 64]");
    expect(e.message).toContain("set r");
  });

  it("another init_r for adalora", async () => {
    const { dir } = await saved(build("builtin:tiny-chatglm2", SEED));
    const e = await refusal(loadAdapter(dir, build("builtin:tiny-chatglm2", SEED.replace("init_r = 12", "init_r = 10"))));
    expect(e.message).toContain("init_r = 12 but the spec has init_r = 10");
  });

  it("a missing tensor and a tensor the spec has no place for", async () => {
    const b = build("builtin:tiny-llama", "lora r=2 on q_proj, v_proj;");
    const { dir } = await saved(b);
    const fewer = build("builtin:tiny-llama", "lora r=2 on q_proj;");
    const extra = await refusal(loadAdapter(dir, fewer));
    expect(extra.message).toContain("tensor 'base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight' [2, 64] has no place in the spec's graph (and 3 more)");
    const { dir: d2 } = await saved(fewer);
    const missing = await refusal(loadAdapter(d2, b));
    expect(missing.tensor).toBe("base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight");
    expect(missing.message).toContain("no tensor 'base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight'");
  });

  it("an ia3 module scaled on the other side", async () => {
    const { dir } = await saved(build("builtin:tiny-llama", "ia3 on k_proj, down_proj;"));
    const e = await refusal(loadAdapter(dir, build("builtin:tiny-llama", "ia3 on k_proj, down_proj { feedforward = (k_proj, down_proj); }")));
    expect(e.message).toMatch(/has shape \[32, 1\] but the spec's model\.layers\.0\.self_attn\.k_proj\.ia3_l needs \[1, 64\]; .*feedforward/);
  });

  it("a corrupt or truncated safetensors file", async () => {
    const b = build("builtin:tiny-llama", "lora r=2 on q_proj;");
    const { dir } = await saved(b);
    const file = join(dir, "adapter_model.safetensors");
    await truncate(file, 300);
    const e = await refusal(loadAdapter(dir, b));
    expect(e.file).toBe(file);
    await writeFile(file, "not a safetensors file at all");
    expect((await refusal(loadAdapter(dir, b))).message).toContain(file);
  });

  it("folders that are not adapters", async () => {
    const b = build("builtin:tiny-llama", "lora r=2 on q_proj;");
    const root = scratch();
    expect((await refusal(loadAdapter(join(root, "nope"), b))).message).toBe(`${join(root, "nope")}: no such adapter folder`);
    await mkdir(join(root, "empty"));
    expect((await refusal(loadAdapter(join(root, "empty"), b))).message).toContain("not an adapter folder: no adapter_config.json");
    const { dir } = await saved(b);
    await writeFile(join(dir, "adapter_config.json"), "{ nope");
    expect((await refusal(loadAdapter(dir, b))).message).toContain("adapter_config.json: not valid JSON");
    const { dir: d2 } = await saved(b);
    await rm(join(d2, "adapter_model.safetensors"));
    expect((await refusal(loadAdapter(d2, b))).message).toBe(`${join(d2, "adapter_model.safetensors")}: missing; an adapter folder holds adapter_config.json and adapter_model.safetensors (or PEFT's adapter_model.bin)`);
    await writeFile(join(d2, "adapter_model.bin"), "pickle");
    const notTorch = await refusal(loadAdapter(d2, b));
    expect(notTorch.file).toBe(join(d2, "adapter_model.bin"));
    expect(notTorch.message).toContain("not a PyTorch checkpoint");
  });

  it("a PEFC folder for a spec of another kind", async () => {
    const { dir } = await saved(build("builtin:tiny-gpt2", "bitfit;"));
    const e = await refusal(loadAdapter(dir, build("builtin:tiny-gpt2", "lora on c_attn;")));
    expect(e.message).toContain("the adapter is pefc's own layout");
  });
});
