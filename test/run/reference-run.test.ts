/**
 * The run path on the CPU reference, end to end: a .peft file trains, saves an adapter that loads
 * back and generates, two runs are bit-identical, and the real stories260K generates llama2.c's
 * published continuation.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";

const dir = mkdtempSync(join(tmpdir(), "pefc-run-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function pefc(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(argv, { out: (s) => (out += `${s}\n`), err: (s) => (err += `${s}\n`) });
  return { code, out, err };
}

const data = resolve("examples/data/instructions.jsonl");
const spec = (out: string, extra = "") => `model "builtin:tiny-llama";
data train "${data}" { prompt = instruction; response = output; max_length = 64; }
data eval { split = 4; }
lora r=4 alpha=8 dropout=0.1 on q_proj, v_proj;${extra}
train { steps = 4; batch = 2; grad_accum = 2; lr = 0.01; log_every = 1; eval_every = 2 steps; }
save every 2 steps to "${out}";
`;

describe("pefc run --device reference", () => {
  it("trains, evaluates, saves adapters, and two runs are bit-identical", async () => {
    const outs: Buffer[] = [];
    for (const name of ["a", "b"]) {
      // Same file name in two folders: the saved metadata names the spec file.
      mkdirSync(join(dir, name));
      writeFileSync(join(dir, name, "run.peft"), spec(join(dir, name, "out")));
      const r = await pefc("run", "--device", "reference", "--json", join(dir, name, "run.peft"));
      expect(r.err).toBe("");
      expect(r.code).toBe(0);
      const events = r.out.trim().split("\n").map((l) => JSON.parse(l) as { event: string; loss?: number; step?: number; dir?: string });
      expect(events.filter((e) => e.event === "step").map((e) => e.step)).toEqual([1, 2, 3, 4]);
      for (const e of events.filter((x) => x.event === "step")) expect(Number.isFinite(e.loss)).toBe(true);
      expect(events.filter((e) => e.event === "eval").map((e) => e.step)).toEqual([2, 4]);
      expect(events.filter((e) => e.event === "saved").map((e) => e.dir)).toEqual([join(dir, name, "out", "checkpoint-2"), join(dir, name, "out", "checkpoint-4")]);
      outs.push(readFileSync(join(dir, name, "out", "checkpoint-4", "adapter_model.safetensors")));
    }
    expect(outs[0]!.equals(outs[1]!)).toBe(true);
    const cfg = JSON.parse(readFileSync(join(dir, "a", "out", "checkpoint-4", "adapter_config.json"), "utf8")) as Record<string, unknown>;
    expect(cfg).toMatchObject({ peft_type: "LORA", r: 4, lora_alpha: 8, target_modules: ["q_proj", "v_proj"] });
  });

  it("generates with the saved adapter, and the adapter changes what the model says", async () => {
    const base = await pefc("generate", "--device", "reference", "--model", "builtin:tiny-llama", "--prompt", "Tell me", "--max-new-tokens", "8");
    const tuned = await pefc("generate", "--device", "reference", "--model", "builtin:tiny-llama", "--adapter", join(dir, "a", "out", "checkpoint-4"), "--prompt", "Tell me", "--max-new-tokens", "8");
    expect(base.code).toBe(0);
    expect(tuned.code).toBe(0);
    expect(tuned.out.startsWith("Tell me")).toBe(true);
    expect(tuned.out).not.toBe(base.out);
  });

  it("init from a saved adapter continues from its values", async () => {
    writeFileSync(join(dir, "c.peft"), spec("c", `\ninit from "${join(dir, "a", "out", "checkpoint-4")}";`).replace("steps = 4", "steps = 1"));
    const r = await pefc("run", "--device", "reference", "--json", join(dir, "c.peft"));
    expect(r.code).toBe(0);
    const first = JSON.parse(r.out.trim().split("\n").find((l) => l.includes('"step"'))!) as { loss: number };
    writeFileSync(join(dir, "d.peft"), spec("d").replace("steps = 4", "steps = 1"));
    const fresh = JSON.parse((await pefc("run", "--device", "reference", "--json", join(dir, "d.peft"))).out.trim().split("\n").find((l) => l.includes('"step"'))!) as { loss: number };
    expect(first.loss).not.toBe(fresh.loss);
  });

  it("a bad data record stops the run with file:line, before any step", async () => {
    writeFileSync(join(dir, "bad.jsonl"), '{"q": "a", "a": "b"}\n{"q": "c"\n');
    writeFileSync(join(dir, "bad.peft"), `model "builtin:tiny-llama";\ndata train "bad.jsonl" { prompt = q; response = a; }\nlora;\ntrain { steps = 1; }\n`);
    const r = await pefc("run", "--device", "reference", join(dir, "bad.peft"));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/bad\.jsonl:2/);
    expect(r.out).not.toContain("step 1");
  });
});

describe("pefc generate --device reference", () => {
  it("stories260K continues 'Once upon a time' as llama2.c does", async () => {
    const r = await pefc("generate", "--device", "reference", "--model", resolve("../shared/models/stories260K/hf"), "--prompt", "Once upon a time", "--max-new-tokens", "24", "--temperature", "0");
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^Once upon a time, there was a little girl named Lily\. She loved to play outside in the p/);
  });

  it("refuses bad flags with a clear message", async () => {
    const r = await pefc("generate", "--device", "reference", "--model", "builtin:tiny-llama", "--prompt", "x", "--top-p", "2");
    expect(r.code).toBe(1);
    expect(r.err).toContain("--top-p must be in (0, 1]");
  });
});
