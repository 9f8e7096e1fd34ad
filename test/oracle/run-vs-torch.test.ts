/**
 * `pefc run --device reference` on the real stories260K checkpoint, starting from a given LoRA
 * adapter, lands where PyTorch lands: one SGD step, and three AdamW steps with gradient
 * accumulation 2, clipping at 1.0 and weight decay 0.01. The oracle (stories_lora.py) is an
 * independent from-scratch Llama + LoRA in PyTorch, trained with torch.optim and
 * clip_grad_norm_ exactly as Accelerate runs a step.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";
import { openSafetensorsFile } from "../../src/runtime/io/index.js";
import { runTorchOracle, type OracleBatch, type OracleConfig } from "./torch.js";
import { STORIES_DIR, storiesBatches, writeStoriesAdapter } from "./stories-adapter.js";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** The oracle's padded rows back to records (labels = input_ids), in the same order. */
function records(batches: OracleBatch[]): string {
  const rows: string[] = [];
  for (const b of batches) {
    b.input_ids.forEach((ids, r) => {
      const n = b.labels[r]!.findIndex((l) => l === -100);
      rows.push(JSON.stringify({ input_ids: n < 0 ? ids : ids.slice(0, n) }));
    });
  }
  return rows.join("\n") + "\n";
}

interface Case {
  name: string;
  device?: "reference" | "gpu";
  train: string;
  oracle: Omit<OracleConfig, "model_dir" | "adapter_dir" | "batches">;
}

async function compare(c: Case): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), `pefc-torch-${c.name}-`));
  dirs.push(dir);
  const adapter = await writeStoriesAdapter({ dir: join(dir, "start") });
  const batches = await storiesBatches();
  writeFileSync(join(dir, "rows.jsonl"), records(batches));
  writeFileSync(
    join(dir, "run.peft"),
    `model "${STORIES_DIR}";
data train "rows.jsonl" { shuffle = false; }
init from "start";
lora r=4 alpha=8 on q_proj, v_proj;
train { ${c.train} batch = 2; schedule = constant; log_every = 1; }
save to "out";
`,
  );
  let out = "";
  let err = "";
  const code = await main(["run", "--device", c.device ?? "reference", "--json", join(dir, "run.peft")], { out: (s) => (out += `${s}\n`), err: (s) => (err += `${s}\n`) });
  expect(err).toBe("");
  expect(code).toBe(0);
  const steps = out.trim().split("\n").map((l) => JSON.parse(l) as { event: string; loss: number; gradNorm?: number }).filter((e) => e.event === "step");

  const oracle = await runTorchOracle({ model_dir: STORIES_DIR, adapter_dir: adapter.dir, batches, dtype: "float64", ...c.oracle });
  expect(steps.map((s) => s.loss)).toHaveLength(oracle.losses.length);
  steps.forEach((s, i) => {
    expect(Math.abs(s.loss - oracle.losses[i]!)).toBeLessThan(2e-5);
    if (s.gradNorm !== undefined) expect(Math.abs(s.gradNorm - oracle.grad_norms[i]!) / oracle.grad_norms[i]!).toBeLessThan(1e-4);
  });

  const saved = await openSafetensorsFile(join(dir, "out", "adapter_model.safetensors"));
  let worst = 0;
  for (const [key, want] of Object.entries(oracle.adapter)) {
    const got = await saved.readF32(key);
    expect(got.length).toBe(want.length);
    const start = adapter.tensors.get(key)!;
    let moved = 0;
    for (let i = 0; i < got.length; i++) {
      worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
      moved = Math.max(moved, Math.abs(want[i]! - start[i]!));
    }
    expect(moved).toBeGreaterThan(0);
  }
  expect([...saved.tensors.keys()].sort()).toEqual(Object.keys(oracle.adapter).sort());
  // f32 against the f64 oracle: parameters agree to well below one update's size.
  expect(worst).toBeLessThan(c.device === "gpu" ? 1e-5 : 2e-6);
}

describe("pefc run --device reference lands where PyTorch lands (stories260K, LoRA)", () => {
  it("one SGD step", async () => {
    await compare({ name: "sgd", train: "steps = 1; grad_accum = 1; lr = 0.05; optimizer = sgd; clip = 0;", oracle: { optimizer: "sgd", lr: 0.05, steps: 1, grad_accum: 1, clip: 0, momentum: 0, weight_decay: 0 } });
  });

  it("three AdamW steps, grad_accum 2, clip 1.0, weight decay 0.01", async () => {
    await compare({
      name: "adamw",
      train: "steps = 3; grad_accum = 2; lr = 0.001; optimizer = adamw; clip = 1.0; weight_decay = 0.01;",
      oracle: { optimizer: "adamw", lr: 0.001, steps: 3, grad_accum: 2, clip: 1.0, weight_decay: 0.01, betas: [0.9, 0.999], eps: 1e-8 },
    });
  });
});

describe("pefc run on the WebGPU device lands where PyTorch lands (stories260K, LoRA)", () => {
  it("one SGD step", async () => {
    await compare({ name: "sgd-gpu", device: "gpu", train: "steps = 1; grad_accum = 1; lr = 0.05; optimizer = sgd; clip = 0;", oracle: { optimizer: "sgd", lr: 0.05, steps: 1, grad_accum: 1, clip: 0, momentum: 0, weight_decay: 0 } });
  });

  it("three AdamW steps, grad_accum 2, clip 1.0, weight decay 0.01", async () => {
    await compare({
      name: "adamw-gpu",
      device: "gpu",
      train: "steps = 3; grad_accum = 2; lr = 0.001; optimizer = adamw; clip = 1.0; weight_decay = 0.01;",
      oracle: { optimizer: "adamw", lr: 0.001, steps: 3, grad_accum: 2, clip: 1.0, weight_decay: 0.01, betas: [0.9, 0.999], eps: 1e-8 },
    });
  });
});
