/**
 * Every accelerate.yaml and ds_config.json of the golden bundles validates against the schemas
 * in schemas/ (the fields Accelerate and DeepSpeed accept, with their types and enum values),
 * parsed by the `yaml` package as Accelerate's own loader would read them; and the schemas do
 * reject what those tools reject (a misspelt key, a wrong enum value, a wrong type, DeepSpeed
 * settings beside a DeepSpeed config file).
 */
import { readdirSync, readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { Ajv } from "ajv";
import { parse } from "yaml";
import { describe, expect, it } from "vitest";

const ROOT = new URL("../../", import.meta.url).pathname;
const GOLDEN = join(ROOT, "test/export-run/golden");
const ajv = new Ajv({ allErrors: true, strict: false });
const accelerate = ajv.compile(JSON.parse(readFileSync(join(ROOT, "schemas/accelerate-config.schema.json"), "utf8")));
const deepspeed = ajv.compile(JSON.parse(readFileSync(join(ROOT, "schemas/deepspeed-config.schema.json"), "utf8")));

const bundles = readdirSync(GOLDEN).filter((n) => existsSync(join(GOLDEN, n, "accelerate.yaml")));

function yamlOf(name: string): Record<string, unknown> {
  return parse(readFileSync(join(GOLDEN, name, "accelerate.yaml"), "utf8")) as Record<string, unknown>;
}

describe("accelerate.yaml and ds_config.json against schemas/", () => {
  it("has bundles of every engine", () => {
    const types = new Set(bundles.map((b) => yamlOf(b)["distributed_type"]));
    expect([...types].sort()).toEqual(["DEEPSPEED", "FSDP", "MULTI_GPU", "NO"]);
  });

  for (const b of bundles) {
    it(b, () => {
      const y = yamlOf(b);
      expect(accelerate(y), JSON.stringify(accelerate.errors)).toBe(true);
      if (y["distributed_type"] === "DEEPSPEED") {
        const ds = JSON.parse(readFileSync(join(GOLDEN, b, "ds_config.json"), "utf8")) as Record<string, any>;
        expect(deepspeed(ds), JSON.stringify(deepspeed.errors)).toBe(true);
        expect(ds["zero_optimization"]["stage"]).toBe(3);
        expect(ds["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"]).toBe(true);
        expect((y["deepspeed_config"] as Record<string, unknown>)["zero3_init_flag"]).toBe(true);
      }
      if (y["distributed_type"] === "FSDP") {
        const f = y["fsdp_config"] as Record<string, unknown>;
        expect([f["fsdp_auto_wrap_policy"], f["fsdp_sharding_strategy"], f["fsdp_use_orig_params"]]).toEqual(["TRANSFORMER_BASED_WRAP", "FULL_SHARD", false]);
      }
    });
  }

  it("rejects what Accelerate rejects", () => {
    const ds = yamlOf("medical");
    const fsdp = yamlOf("stories-lora-fsdp-8x2-bf16");
    const bad: [string, Record<string, unknown>][] = [
      ["misspelt key", { ...ds, num_process: 2 }],
      ["enum", { ...ds, distributed_type: "DEEP_SPEED" }],
      ["type", { ...ds, num_processes: "8" }],
      ["deepspeed field beside a config file", { ...ds, deepspeed_config: { ...(ds["deepspeed_config"] as object), zero_stage: 3 } }],
      ["mixed_precision beside a config file", { ...ds, mixed_precision: "bf16" }],
      ["fsdp enum", { ...fsdp, fsdp_config: { ...(fsdp["fsdp_config"] as object), fsdp_sharding_strategy: "FULL" } }],
      ["fsdp without its section", { ...fsdp, fsdp_config: undefined }],
    ];
    for (const [why, v] of bad) expect(accelerate(JSON.parse(JSON.stringify(v))), why).toBe(false);
  });

  it("rejects what DeepSpeed rejects", () => {
    const ds = JSON.parse(readFileSync(join(GOLDEN, "medical", "ds_config.json"), "utf8")) as Record<string, any>;
    const bad: [string, unknown][] = [
      ["misspelt key", { ...ds, gradient_clip: 1 }],
      ["stage", { ...ds, zero_optimization: { ...ds["zero_optimization"], stage: 4 } }],
      ["auto where none is allowed", { ...ds, steps_per_print: "auto" }],
      ["offload device", { ...ds, zero_optimization: { ...ds["zero_optimization"], offload_param: { device: "gpu" } } }],
    ];
    for (const [why, v] of bad) expect(deepspeed(v), why).toBe(false);
  });
});
