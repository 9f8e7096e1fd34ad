/**
 * Fine-tuning a real pretrained model from text: stories260K with LoRA on the project's English
 * instruction sample (examples/data/instructions.jsonl, tokenized by the model's tokenizer.json
 * through a template), with 4 records held out; the eval loss falls.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";

const dir = mkdtempSync(join(tmpdir(), "pefc-stories-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("stories260K LoRA from text", () => {
  it("the eval loss falls", async () => {
    writeFileSync(
      join(dir, "run.peft"),
      `model "${resolve("../shared/models/stories260K/hf")}";
data train "${resolve("examples/data/instructions.jsonl")}" { prompt = instruction; response = output; template = "Instruction: {prompt}\\nResponse: "; max_length = 96; }
data eval { split = 4; }
freeze base;
lora r=8 alpha=16 on q_proj, k_proj, v_proj, o_proj;
train { steps = 8; batch = 4; lr = 5e-3; eval_every = 4 steps; log_every = 1; }
`,
    );
    let out = "";
    const code = await main(["run", "--device", "reference", "--json", join(dir, "run.peft")], { out: (s) => (out += `${s}\n`), err: (s) => (out += `${s}\n`) });
    expect(code).toBe(0);
    const events = out.trim().split("\n").map((l) => JSON.parse(l) as { event: string; loss: number; step: number });
    const evals = events.filter((e) => e.event === "eval");
    expect(evals.map((e) => e.step)).toEqual([4, 8]);
    expect(evals[1]!.loss).toBeLessThan(evals[0]!.loss - 0.01);
  });
});
