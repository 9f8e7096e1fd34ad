/**
 * Mutation fuzzing of the front end: thousands of damaged variants of real specs (characters and
 * tokens deleted, inserted, duplicated; invalid UTF-8; huge numbers). The checker must never throw
 * and the CLI must answer with exit 0 or 1 and no stack trace. The edits are the fault suite's
 * (faults/lib/mutate.ts); `npm run faults` runs many more kinds, at volume.
 */
import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { checkSource } from "../../src/frontend.js";
import { main } from "../../src/cli/main.js";
import { mutateChars } from "../../faults/lib/mutate.js";
import { rng } from "../../faults/lib/rng.js";

const SEEDS: string[] = [
  `model "builtin:tiny-chatglm2";
data train "data/medical.jsonl" { prompt = ask; response = answer; max_source = 128; max_target = 256; }
freeze base;
adalora r=8 alpha=32 dropout=0.01 on query_key_value { init_r = 12; tinit = 200; tfinal = 1000; delta_t = 10; }
train { epochs = 5; batch = 1; grad_accum = 16; lr = 1e-4; optimizer = adamw; clip = 1.0; precision = f16; }
save every epoch to "output" keep 3;`,
  `peft 0.1;
model "builtin:tiny-llama" { seed = 3; }
select attn = @q, @k, @v, @attn_out;
data train "a.csv" { prompt = "question"; response = answer; template = "{system}\\n### Q: {prompt}\\n### A: {response}"; max_length = 512 tokens; truncation = left; }
data eval { split = 5%; }
lora r=8 alpha=16 dropout=0.05 on $attn in layers[4:] except /.*layers\\.1\\.self_attn\\.q_proj$/i { init = gaussian; override layers[-4:] { r = 16; alpha = 32; } }
unipelt on layers[2:] { prefix tokens=16; lora r=8 alpha=16 on @q, @v; }
mam { adapter parallel reduction=4; }
combine gate=true { ia3 on mlp.*_proj; bitfit on "model.layers.**.o_proj"; }
train { steps = 100; optimizer = sgd; momentum = 0.9; schedule = cosine; warmup = 3%; log_every = 5 steps; eval_every = 1 epoch; }
export merged to "merged"; init from "x";`,
];

function exampleSources(): string[] {
  try {
    return readdirSync("examples").filter((f) => f.endsWith(".peft")).map((f) => readFileSync(`examples/${f}`, "utf8"));
  } catch {
    return [];
  }
}

describe("fuzzing the front end", () => {
  it("never throws on thousands of mutated specs", () => {
    const r = rng(1234);
    const seeds = [...SEEDS, ...exampleSources()];
    let withErrors = 0;
    for (let i = 0; i < 4000; i++) {
      const src = mutateChars(seeds[i % seeds.length]!, r);
      const res = checkSource(src, "fuzz.peft");
      for (const d of res.diagnostics) {
        expect(d.code).toMatch(/^P\d{3}$/);
        expect(d.message).not.toMatch(/\n\s+at /);
        if (d.span) expect(d.span.line).toBeGreaterThanOrEqual(1);
      }
      if (!res.ok) withErrors++;
    }
    expect(withErrors).toBeGreaterThan(2000);
  });

  it("the CLI answers 0 or 1 and prints no stack trace", async () => {
    const r = rng(99);
    const { writeFileSync, mkdtempSync } = await import("node:fs");
    const { join } = await import("node:path");
    const { tmpdir } = await import("node:os");
    const dir = mkdtempSync(join(tmpdir(), "pefc-fuzz-"));
    for (let i = 0; i < 300; i++) {
      const file = join(dir, `f${i}.peft`);
      writeFileSync(file, mutateChars(SEEDS[i % SEEDS.length]!, r));
      let printed = "";
      const code = await main(["check", file], { out: (s) => (printed += s), err: (s) => (printed += s) });
      expect([0, 1]).toContain(code);
      expect(printed).not.toMatch(/\n\s+at .*:\d+:\d+/);
    }
  });

  it("the unmutated seeds check clean", () => {
    for (const s of SEEDS) expect(checkSource(s, "seed.peft", { fragment: false }).diagnostics.filter((d) => d.severity === "error")).toEqual([]);
  });
});
