/**
 * Merging: for every adapted module, the merged linear layer must compute what the base layer plus
 * the adapter path computes, both evaluated with the CPU reference ops on random inputs (scales
 * written out by hand from the spec's numbers). Then P504 for what cannot merge, and merged
 * checkpoints written as Hugging Face folders.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { initBuiltinWeights } from "../../src/models/builtin.js";
import { Prng } from "../../src/models/prng.js";
import { openCheckpoint, readSafetensorsHeader, UserError } from "../../src/runtime/io/index.js";
import { adaloraForward, ia3InputForward, ia3OutputForward, linearForward, loraForward } from "../../src/runtime/reference/index.js";
import { mergeAdapter, withShapes, writeHfCheckpoint } from "../../src/runtime/adapter/index.js";
import { build, fillValues, REPO, scratch, STORIES, type Built } from "./helpers.js";

const M = 5;

function baseWeights(b: Built): Map<string, Float32Array> {
  const w = initBuiltinWeights(b.profile, 3);
  if (typeof w === "string") throw new Error(w);
  const rng = new Prng(11);
  for (const [name, v] of w) if (name.endsWith(".bias")) for (let i = 0; i < v.length; i++) v[i] = rng.uniform() - 0.5;
  return w;
}

async function stories(b: Built): Promise<Map<string, Float32Array>> {
  const ck = await openCheckpoint(join(REPO, STORIES));
  const out = new Map<string, Float32Array>();
  for (const m of b.profile.modules) for (const p of m.params) out.set(p.name, await ck.readF32(p.name));
  return out;
}

type Path = (x: Float64Array, W: Float32Array, bias: Float32Array | undefined) => Float64Array;

/** max |merged(x) − adapter(x)| over random x for module `path`. */
function gap(b: Built, base: Map<string, Float32Array>, merged: Map<string, Float32Array>, path: string, adapter: Path): number {
  const m = b.profile.modules.find((x) => x.path === path)!;
  const shape = { M, K: m.inFeatures, N: m.outFeatures, transposed: m.transposed };
  const rng = new Prng(path.length);
  const x = Float64Array.from({ length: M * m.inFeatures }, () => rng.uniform() * 2 - 1);
  const wName = `${path}.weight`;
  const bName = m.hasBias ? `${path}.bias` : undefined;
  const want = adapter(x, base.get(wName)!, bName ? base.get(bName) : undefined);
  const got = linearForward(x, merged.get(wName)!, bName ? merged.get(bName) : undefined, shape);
  let worst = 0;
  for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
  return worst;
}

function add(a: Float64Array, d: Float64Array): Float64Array {
  return a.map((v, i) => v + d[i]!);
}

describe("merged weights compute base + adapter", () => {
  it("lora on llama with an override and rslora: s = alpha/√r per module", () => {
    const b = build("builtin:tiny-llama", "lora r=4 alpha=8 rslora=true on q_proj, down_proj { override down_proj in layers[1] { r = 2; alpha = 3; } }");
    const base = baseWeights(b);
    const v = fillValues(b.graph);
    const merged = mergeAdapter({ base, profile: b.profile, spec: b.spec, graph: b.graph, values: v });
    const cases: [string, number, number][] = [
      ["model.layers.0.self_attn.q_proj", 4, 8 / 2], ["model.layers.1.self_attn.q_proj", 4, 8 / 2],
      ["model.layers.0.mlp.down_proj", 4, 8 / 2], ["model.layers.1.mlp.down_proj", 2, 3 / Math.SQRT2],
    ];
    for (const [p, r, s] of cases) {
      const m = b.profile.modules.find((x) => x.path === p)!;
      const d = gap(b, base, merged, p, (x, W, bias) =>
        add(linearForward(x, W, bias, { M, K: m.inFeatures, N: m.outFeatures }), loraForward(x, v.get(`${p}.lora_A.weight`)!, v.get(`${p}.lora_B.weight`)!, s, { M, inF: m.inFeatures, outF: m.outFeatures, r }).delta));
      console.log(`lora ${p}: max |merged − base+lora| = ${d.toExponential(2)}`);
      expect(d).toBeLessThan(1e-5);
    }
    expect(merged.get("model.layers.0.self_attn.k_proj.weight")).toBe(base.get("model.layers.0.self_attn.k_proj.weight"));
    expect(base.get("model.layers.0.self_attn.q_proj.weight")).not.toBe(merged.get("model.layers.0.self_attn.q_proj.weight"));
  });

  it("lora on GPT-2's Conv1D c_attn (weight stored [in, out]) with its bias", () => {
    const b = build("builtin:tiny-gpt2", "lora r=4 alpha=16 on c_attn;");
    const base = baseWeights(b);
    const v = fillValues(b.graph);
    const merged = mergeAdapter({ base, profile: b.profile, spec: b.spec, graph: b.graph, values: v });
    for (const p of ["transformer.h.0.attn.c_attn", "transformer.h.1.attn.c_attn"]) {
      const d = gap(b, base, merged, p, (x, W, bias) =>
        add(linearForward(x, W, bias, { M, K: 64, N: 192, transposed: true }), loraForward(x, v.get(`${p}.lora_A.weight`)!, v.get(`${p}.lora_B.weight`)!, 4, { M, inF: 64, outF: 192, r: 4 }).delta));
      console.log(`lora conv1d ${p}: max diff ${d.toExponential(2)}`);
      expect(d).toBeLessThan(1e-5);
    }
  });

  it("lora on stories260K's real weights", async () => {
    const b = build(STORIES, "lora r=8 alpha=16 on o_proj in layers[2];");
    const base = await stories(b);
    const v = fillValues(b.graph);
    const merged = mergeAdapter({ baseDir: STORIES, base, profile: b.profile, spec: b.spec, graph: b.graph, values: v });
    const p = "model.layers.2.self_attn.o_proj";
    const d = gap(b, base, merged, p, (x, W) => add(linearForward(x, W, undefined, { M, K: 64, N: 64 }), loraForward(x, v.get(`${p}.lora_A.weight`)!, v.get(`${p}.lora_B.weight`)!, 2, { M, inF: 64, outF: 64, r: 8 }).delta));
    console.log(`lora stories260K ${p}: max diff ${d.toExponential(2)}`);
    expect(d).toBeLessThan(1e-5);
  });

  it("adalora (the seed case): B·(A⊙E)·alpha/(ranknum+1e-5), bias untouched", () => {
    const b = build("builtin:tiny-chatglm2", "adalora r=8 alpha=32 dropout=0.01 on query_key_value { init_r = 12; tinit = 3 steps; tfinal = 3 steps; delta_t = 10 steps; }");
    const base = baseWeights(b);
    const v = fillValues(b.graph);
    const merged = mergeAdapter({ base, profile: b.profile, spec: b.spec, graph: b.graph, values: v });
    for (const l of [0, 1]) {
      const p = `transformer.encoder.layers.${l}.self_attention.query_key_value`;
      const d = gap(b, base, merged, p, (x, W, bias) =>
        add(linearForward(x, W, bias, { M, K: 64, N: 128 }), adaloraForward(x, v.get(`${p}.lora_A`)!, v.get(`${p}.lora_E`)!, v.get(`${p}.lora_B`)!, 32 / (12 + 1e-5), { M, inF: 64, outF: 128, r: 12 }).delta));
      console.log(`adalora ${p}: max diff ${d.toExponential(2)}`);
      expect(d).toBeLessThan(1e-5);
      expect(merged.get(`${p}.bias`)).toBe(base.get(`${p}.bias`));
    }
  });

  it("ia3 on GPT-2: output scaling of c_attn (bias scaled too), input scaling of mlp.c_proj, Conv1D layout", () => {
    const b = build("builtin:tiny-gpt2", "ia3;");
    const base = baseWeights(b);
    const v = fillValues(b.graph);
    const merged = mergeAdapter({ base, profile: b.profile, spec: b.spec, graph: b.graph, values: v });
    for (const l of [0, 1]) {
      const qkv = `transformer.h.${l}.attn.c_attn`;
      const d1 = gap(b, base, merged, qkv, (x, W, bias) => ia3OutputForward(linearForward(x, W, bias, { M, K: 64, N: 192, transposed: true }), v.get(`${qkv}.ia3_l`)!, M, 192));
      const ff = `transformer.h.${l}.mlp.c_proj`;
      const d2 = gap(b, base, merged, ff, (x, W, bias) => ia3InputForward(x, v.get(`${ff}.ia3_l`)!, W, bias, { M, K: 256, N: 64, transposed: true }).y);
      console.log(`ia3 gpt2 layer ${l}: c_attn ${d1.toExponential(2)}, mlp.c_proj ${d2.toExponential(2)}`);
      expect(Math.max(d1, d2)).toBeLessThan(1e-5);
    }
  });

  it("ia3 and lora on one module, bitfit on another: ia3 scales the base output, lora adds unscaled", () => {
    const b = build("builtin:tiny-chatglm2", "ia3 on query_key_value;\nlora r=2 alpha=4 on query_key_value;\nbitfit on query_key_value in layers[1];");
    const base = baseWeights(b);
    const v = fillValues(b.graph);
    const merged = mergeAdapter({ base, profile: b.profile, spec: b.spec, graph: b.graph, values: v });
    for (const l of [0, 1]) {
      const p = `transformer.encoder.layers.${l}.self_attention.query_key_value`;
      const d = gap(b, base, merged, p, (x, W, bias) => {
        const trained = l === 1 ? v.get(`${p}.bias`)! : bias;
        const y = ia3OutputForward(linearForward(x, W, trained, { M, K: 64, N: 128 }), v.get(`${p}.ia3_l`)!, M, 128);
        return add(y, loraForward(x, v.get(`${p}.lora_A.weight`)!, v.get(`${p}.lora_B.weight`)!, 2, { M, inF: 64, outF: 128, r: 2 }).delta);
      });
      console.log(`ia3+lora(+bitfit) ${p}: max diff ${d.toExponential(2)}`);
      expect(d).toBeLessThan(1e-5);
    }
  });
});

describe("what cannot merge", () => {
  const refuse = (model: string, body: string): UserError => {
    const b = build(model, body);
    try {
      mergeAdapter({ base: baseWeights(b), profile: b.profile, spec: b.spec, graph: b.graph, values: fillValues(b.graph) });
    } catch (e) {
      expect(e).toBeInstanceOf(UserError);
      return e as UserError;
    }
    throw new Error("merged");
  };
  it("prefix, prompts, adapters and gated lora are P504", () => {
    expect(refuse("builtin:tiny-llama", "prefix tokens=2;").message).toBe("P504: cannot merge prefix into the weights (line 4): it changes the computation, not a weight; export the adapter instead");
    expect(refuse("builtin:tiny-llama", "prompt_tuning tokens=2;").message).toMatch(/^P504: cannot merge prompt_tuning/);
    expect(refuse("builtin:tiny-llama", "adapter pfeiffer;").message).toMatch(/^P504: cannot merge adapter pfeiffer/);
    expect(refuse("builtin:tiny-llama", "unipelt;").message).toMatch(/^P504: cannot merge (gated lora|adapter|prefix)/);
  });
});

describe("writeHfCheckpoint", () => {
  it("writes config.json as transformers does and the tied head once", async () => {
    const b = build("builtin:tiny-gpt2", "lora on c_attn;");
    const merged = mergeAdapter({ base: baseWeights(b), profile: b.profile, spec: b.spec, graph: b.graph, values: fillValues(b.graph) });
    const tensors = withShapes(merged, b.profile);
    tensors.set("lm_head.weight", { shape: [320, 64], data: merged.get("transformer.wte.weight")!.slice() });
    const dir = join(scratch(), "merged");
    await writeHfCheckpoint(dir, tensors, { model_type: "gpt2", n_embd: 64, layer_norm_epsilon: 1e-5, tie_word_embeddings: true });
    expect(await readFile(join(dir, "config.json"), "utf8")).toBe('{\n  "layer_norm_epsilon": 1e-05,\n  "model_type": "gpt2",\n  "n_embd": 64,\n  "tie_word_embeddings": true\n}\n');
    const h = await readSafetensorsHeader(join(dir, "model.safetensors"));
    expect(h.metadata).toEqual({ format: "pt" });
    expect(h.tensors.map((t) => t.name)).not.toContain("lm_head.weight");
    expect(h.tensors).toHaveLength(merged.size);
    const ck = await openCheckpoint(dir);
    const w = "transformer.h.1.attn.c_attn.weight";
    expect(ck.get(w).shape).toEqual([64, 192]);
    expect(Array.from(await ck.readF32(w))).toEqual(Array.from(merged.get(w)!));
  });
});
