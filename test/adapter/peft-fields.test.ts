/**
 * adapter_config.json holds exactly the fields of PEFT's config class of its peft_type, read from
 * the one table in src/runtime/adapter/peft-fields.ts: for every method pefc saves in PEFT's
 * layout. The table itself is checked against configs the real PEFT (0.21) wrote in
 * ../shared/data/peft-conformance: every field it lists is a field PEFT's class still writes.
 */
import { readdirSync, readFileSync, existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PEFT_CONFIG_FIELDS, peftConfigForSpec, peftMatches, saveAdapter } from "../../src/runtime/adapter/index.js";
import { build, fillValues, scratch, STORIES } from "./helpers.js";

const CASES: [string, string, string, keyof typeof PEFT_CONFIG_FIELDS][] = [
  ["lora", "builtin:tiny-llama", "lora r=4 on q_proj, v_proj;", "LORA"],
  ["lora on some layers", "builtin:tiny-llama", "lora r=4 on q_proj in layers[1:];", "LORA"],
  ["adalora", "builtin:tiny-chatglm2", "adalora r=2 on query_key_value { init_r = 4; }", "ADALORA"],
  ["ia3", STORIES, "ia3 on k_proj, v_proj, down_proj { feedforward = down_proj; }", "IA3"],
  ["ia3 on some layers", "builtin:tiny-llama", "ia3 on k_proj in layers[1:];", "IA3"],
  ["prefix", STORIES, "prefix tokens=5 { projection = false; }", "PREFIX_TUNING"],
  ["p_tuning_v2", "builtin:tiny-chatglm2", "p_tuning_v2 tokens=2;", "PREFIX_TUNING"],
  ["prompt_tuning", STORIES, "prompt_tuning tokens=5;", "PROMPT_TUNING"],
  ["p_tuning", "builtin:tiny-llama", "p_tuning tokens=3 hidden=8;", "P_TUNING"],
];

describe("adapter_config.json fields", () => {
  for (const [what, model, body, type] of CASES) {
    it(`${what}: exactly PeftConfig's fields for ${type}`, async () => {
      const b = build(model, body);
      const dir = join(scratch(), "a");
      await saveAdapter(dir, { ...b, values: fillValues(b.graph), baseModel: "m", extra: { totalStep: 15 } });
      const cfg = JSON.parse(await readFile(join(dir, "adapter_config.json"), "utf8")) as Record<string, unknown>;
      expect(cfg["peft_type"]).toBe(type);
      expect(Object.keys(cfg).sort()).toEqual([...PEFT_CONFIG_FIELDS[type]].sort());
    });
  }

  it("ia3 on a layer subset names the modules without PEFT's layer filter, and PEFT would adapt exactly them", async () => {
    const b = build("builtin:tiny-llama", "ia3 on k_proj in layers[1:];");
    const dir = join(scratch(), "a");
    await saveAdapter(dir, { ...b, values: fillValues(b.graph), baseModel: "m", extra: { totalStep: 15 } });
    const cfg = JSON.parse(await readFile(join(dir, "adapter_config.json"), "utf8")) as { target_modules: string[] };
    expect(peftMatches(b.profile, { targetModules: cfg.target_modules })).toEqual(["model.layers.1.self_attn.k_proj"]);
  });

  it("lists only fields that PEFT's own configs of that type carry (PEFT 0.21's files)", () => {
    const root = "../shared/data/peft-conformance";
    const seen = new Set<string>();
    for (const c of readdirSync(root)) {
      for (const sub of ["init", "peft-trained"]) {
        const f = join(root, c, sub, "adapter_config.json");
        if (!existsSync(f)) continue;
        const cfg = JSON.parse(readFileSync(f, "utf8")) as Record<string, unknown>;
        const type = cfg["peft_type"] as keyof typeof PEFT_CONFIG_FIELDS;
        const fields = PEFT_CONFIG_FIELDS[type];
        expect(fields, `${f}: peft_type ${String(type)}`).toBeDefined();
        expect(fields.filter((k) => !(k in cfg)), f).toEqual([]);
        seen.add(type);
      }
    }
    expect([...seen].sort()).toEqual(["ADALORA", "IA3", "LORA", "PREFIX_TUNING", "PROMPT_TUNING"]);
  });
});

describe("peftConfigForSpec", () => {
  it("gives the peft_type and the same fields and values export writes; nothing for the PEFC layout", async () => {
    const b = build(STORIES, "ia3 on k_proj, v_proj, down_proj { feedforward = down_proj; }");
    const got = peftConfigForSpec({ ...b, baseModel: "m" });
    expect(got?.peftType).toBe("IA3");
    const dir = join(scratch(), "a");
    await saveAdapter(dir, { ...b, values: fillValues(b.graph), baseModel: "m" });
    const written = JSON.parse(await readFile(join(dir, "adapter_config.json"), "utf8")) as Record<string, unknown>;
    expect(JSON.parse(JSON.stringify(got!.config))).toEqual(written);
    expect(peftConfigForSpec({ ...build("builtin:tiny-llama", "unipelt;"), baseModel: "m" })).toBeUndefined();
  });
});
