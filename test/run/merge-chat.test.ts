/**
 * pefc merge folds an adapter into the weights so that the merged model generates exactly what base
 * + adapter generates; methods that cannot fold are refused (P504); export copies an adapter out;
 * chat answers line by line through the template with history.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";

const dir = mkdtempSync(join(tmpdir(), "pefc-merge-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const stories = resolve("../shared/models/stories260K/hf");
const data = resolve("examples/data/instructions.jsonl");

async function pefc(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(argv, { out: (s) => (out += `${s}\n`), err: (s) => (err += `${s}\n`) });
  return { code, out, err };
}

async function train(name: string, method: string, lr = 0.05): Promise<string> {
  writeFileSync(
    join(dir, `${name}.peft`),
    `model "${stories}";\ndata train "${data}" { prompt = instruction; response = output; max_length = 48; }\n${method}\ntrain { steps = 3; batch = 2; lr = ${lr}; }\nsave to "${name}";\n`,
  );
  const r = await pefc("run", "--device", "reference", join(dir, `${name}.peft`));
  expect(r.err).toBe("");
  return join(dir, name);
}

const gen = (model: string, adapter?: string) =>
  pefc("generate", "--device", "reference", "--model", model, ...(adapter ? ["--adapter", adapter] : []), "--prompt", "Once upon a time", "--max-new-tokens", "16");

describe("pefc merge", () => {
  // Rates high enough that three steps change what the model says, so the comparison means something.
  for (const [name, method, lr] of [
    ["lora", "lora r=4 alpha=16 on q_proj, v_proj, down_proj;", 0.05],
    ["adalora", "adalora r=2 alpha=32 on q_proj, o_proj, down_proj { init_r = 4; }", 1],
    ["ia3", "ia3 on k_proj, v_proj, down_proj;", 1],
  ] as const) {
    it(`${name}: the merged model generates exactly what base + adapter generates`, async () => {
      const adapter = await train(name, method, lr);
      const out = join(dir, `${name}-merged`);
      const m = await pefc("merge", "--model", stories, "--adapter", adapter, "--out", out);
      expect(m.err).toBe("");
      expect(m.code).toBe(0);
      expect(readdirSync(out).sort()).toEqual([".pefc-output", "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]);
      const withAdapter = await gen(stories, adapter);
      const merged = await gen(out);
      const base = await gen(stories);
      expect(merged.out).toBe(withAdapter.out);
      expect(withAdapter.out).not.toBe(base.out);
    });
  }

  it("refuses prefix tuning with P504", async () => {
    const adapter = await train("prefix", "p_tuning_v2 tokens=4;");
    const r = await pefc("merge", "--model", stories, "--adapter", adapter, "--out", join(dir, "no"));
    expect(r.code).toBe(1);
    expect(r.err).toContain("P504");
  });
});

describe("pefc export adapter", () => {
  it("copies a checkpoint's adapter files out", async () => {
    const r = await pefc("export", "adapter", join(dir, "lora"), "--out", join(dir, "exported"));
    expect(r.code).toBe(0);
    expect(readdirSync(join(dir, "exported")).sort()).toEqual([".pefc-output", "README.md", "adapter_config.json", "adapter_model.safetensors"]);
    expect((await pefc("export", "adapter", join(dir, "nothing"), "--out", join(dir, "x"))).code).toBe(1);
  });
});

describe("pefc chat", () => {
  it("answers each line through the template, keeping history", () => {
    const r = spawnSync(process.execPath, ["--import", "tsx", resolve("src/cli/main-bin.ts"), "chat", "--device", "reference", "--model", stories, "--template", "plain", "--max-new-tokens", "6"], {
      input: "Once upon a time\nThe cat\nexit\n",
      encoding: "utf8",
    });
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines).toHaveLength(2);
    expect(lines[0]!.length).toBeGreaterThan(0);
  });
});
