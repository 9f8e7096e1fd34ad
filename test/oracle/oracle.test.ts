// Oracles: PyTorch (Debian's python3-torch) running stories_lora.py, an implementation of Llama and
// PEFT LoRA written from the architecture's definition; its own self-test (finite differences,
// B = 0 identity, the trained model's low loss on a TinyStories sentence). Against it: the CPU
// reference executor's base forward on the real stories260K weights, in f64.
import { rmSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildBaseGraph } from "../../src/models/graph/index.js";
import { profileFromConfig } from "../../src/models/profile.js";
import { openCheckpoint } from "../../src/runtime/io/index.js";
import { runGraph, scalar } from "../../src/runtime/reference/executor.js";
import { loadTokenizer } from "../../src/runtime/tokenizer/index.js";
import { STORIES_DIR, STORIES_LORA, storiesBatches, writeStoriesAdapter, type StoriesAdapter } from "./stories-adapter.js";
import { runOracleScript, runTorchOracle, torchAvailable, type OracleBatch, type OracleConfig } from "./torch.js";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function adapter(zeroB: boolean): Promise<StoriesAdapter> {
  const a = await writeStoriesAdapter({ zeroB });
  dirs.push(a.dir);
  return a;
}

/** The reference executor's base-model loss of each micro-batch, in f64. */
async function referenceLosses(batches: OracleBatch[]): Promise<number[]> {
  const config = JSON.parse(await readFile(join(STORIES_DIR, "config.json"), "utf8")) as Record<string, unknown>;
  const profile = profileFromConfig(config, STORIES_DIR);
  if (typeof profile === "string") throw new Error(profile);
  const g = buildBaseGraph(profile);
  const ckpt = await openCheckpoint(STORIES_DIR);
  const params = new Map<string, Float32Array>();
  for (const p of g.params) params.set(p.name, await ckpt.readF32(p.name));
  return batches.map((b) => {
    const B = b.input_ids.length;
    const T = b.input_ids[0]!.length;
    const positions = Int32Array.from({ length: B * T }, (_, i) => i % T);
    const vals = runGraph(g, {
      params,
      dtype: "f64",
      inputs: {
        input_ids: { data: Int32Array.from(b.input_ids.flat()), shape: [B, T] },
        labels: { data: Int32Array.from(b.labels.flat()), shape: [B, T] },
        positions: { data: positions, shape: [B, T] },
      },
    });
    return scalar(vals, "loss");
  });
}

describe("the PyTorch oracle for stories260K LoRA", () => {
  let batches: OracleBatch[];
  beforeAll(async () => {
    batches = await storiesBatches();
  });

  const base = (a: StoriesAdapter, over: Partial<OracleConfig>): OracleConfig => ({
    model_dir: STORIES_DIR,
    adapter_dir: a.dir,
    batches,
    optimizer: "sgd",
    lr: 0.05,
    grad_accum: 1,
    steps: 1,
    dtype: "float64",
    ...over,
  });

  it("has torch (apt-get install python3-torch)", () => {
    expect(torchAvailable()).toBe(true);
  });

  it("passes its self-test, and tokenizes as pefc's tokenizer does", async () => {
    const r = JSON.parse(await runOracleScript(["--selftest", STORIES_DIR])) as {
      ok: boolean;
      checks: Record<string, boolean>;
      sentence: string;
      ids: number[];
      base_loss: number;
      b_zero_loss: number;
    };
    expect(r.checks).toEqual({ base_loss_low: true, b_zero_equals_base: true, fd_A: true, fd_B: true, adamw_first_step: true });
    expect(r.ok).toBe(true);
    expect(r.b_zero_loss).toBe(r.base_loss);
    expect(r.base_loss).toBeLessThan(1);
    const tok = await loadTokenizer(STORIES_DIR);
    expect(r.ids).toEqual(tok.encode(r.sentence));
  });

  it("builds 4 micro-batches of 2 right-padded rows from 8 sentences", () => {
    expect(batches).toHaveLength(4);
    const T = batches[0]!.input_ids[0]!.length;
    for (const b of batches) {
      expect(b.input_ids).toHaveLength(2);
      for (const [i, row] of b.input_ids.entries()) {
        expect(row).toHaveLength(T);
        expect(row[0]).toBe(1);
        b.labels[i]!.forEach((y, t) => expect(y).toBe(row[t] === 0 ? -100 : row[t]));
      }
    }
    expect(batches.flatMap((b) => b.labels.flat()).filter((y) => y === -100).length).toBeGreaterThan(0);
  });

  it("matches the reference executor's base loss with B = 0, and moves only B on the first step", async () => {
    const a = await adapter(true);
    const lr = 0.05;
    const r = await runTorchOracle(base(a, { grad_accum: 4, lr }));
    const ref = await referenceLosses(batches);
    expect(r.micro_losses).toHaveLength(4);
    r.micro_losses.forEach((l, i) => expect(Math.abs(l - ref[i]!)).toBeLessThan(1e-12));
    expect(r.losses[0]).toBeCloseTo(ref.reduce((s, x) => s + x, 0) / 4, 12);
    // B = 0 makes every gradient of A zero, so A stays put; B's is not.
    for (const [key, before] of a.tensors) {
      const after = r.adapter[key]!;
      expect(after).toHaveLength(before.length);
      if (key.includes("lora_A")) expect(after).toEqual(Array.from(before));
      else expect(after.some((x) => x !== 0)).toBe(true);
    }
    expect(r.grad_norms[0]).toBeGreaterThan(0);
  });

  it("trains the non-zero adapter: loss moves off the base, cycles batches, agrees in f32", async () => {
    const a = await adapter(false);
    expect(a.tensors.size).toBe(STORIES_LORA.layers * 2 * 2);
    const ref = await referenceLosses(batches.slice(0, 1));
    const still = await runTorchOracle(base(a, { lr: 0, steps: 5 }));
    expect(Math.abs(still.micro_losses[0]! - ref[0]!)).toBeGreaterThan(1e-4);
    expect(still.micro_losses[4]).toBe(still.micro_losses[0]); // micro-batch 4 is batches[0] again
    const cfg = base(a, { optimizer: "adamw", lr: 0.01, weight_decay: 0.01, grad_accum: 2, clip: 1.0, steps: 3 });
    const f64 = await runTorchOracle(cfg);
    const f32 = await runTorchOracle({ ...cfg, dtype: "float32" });
    expect(f64.losses).toHaveLength(3);
    expect(f64.micro_losses[0]).toBe(still.micro_losses[0]);
    expect(f64.losses[2]!).toBeLessThan(f64.losses[0]!);
    f64.losses.forEach((l, i) => expect(Math.abs(l - f32.losses[i]!)).toBeLessThan(1e-4));
    for (const key of a.tensors.keys()) f64.adapter[key]!.forEach((x, i) => expect(Math.abs(x - f32.adapter[key]![i]!)).toBeLessThan(1e-4));
  });
});
