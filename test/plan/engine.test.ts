/**
 * `pefc plan --engine`: per-GPU memory for ZeRO-3 / FSDP / DDP next to the single-device plan.
 * Expected numbers are derived by hand from ChatGLM2-6B's real config.json (parameter counts as in
 * plan.test.ts) and the sharding rule in src/plan/engine.ts's header, not from pefc's output.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";

const dir = mkdtempSync(join(tmpdir(), "pefc-plan-engine-"));
const glm = resolve("../shared/models/chatglm2-6b-config");
const SEED = `model "${glm}";
freeze base;
adalora r=8 alpha=32 dropout=0.01 on query_key_value { init_r = 12; tinit = 200; tfinal = 1000; delta_t = 10; }
train { steps = 3000; batch = 1; grad_accum = 16; lr = 1e-4; optimizer = adamw; clip = 1.0; precision = f16; }`;

async function plan(...flags: string[]): Promise<{ code: number; out: string; err: string }> {
  const file = join(dir, "seed.peft");
  writeFileSync(file, SEED);
  let out = "";
  let err = "";
  const code = await main(["plan", file, ...flags], { out: (s) => (out += `${s}\n`), err: (s) => (err += `${s}\n`) });
  return { code, out, err };
}

// ChatGLM2-6B: one decoder layer, all parameters, and AdaLoRA's trainable count (plan.test.ts).
const layer = 4096 + (4096 * 4608 + 4608) + 4096 * 4096 + 4096 + 4096 * 27392 + 13696 * 4096;
const all = 6_246_508_908;
const trainable = 2_924_880;

describe("pefc plan --engine", () => {
  it("ZeRO-3 on 8 GPUs x 2 nodes in bf16 shards params, grads and optimizer state 16 ways", async () => {
    const r = await plan("--json", "--engine", "deepspeed", "--gpus", "8", "--nodes", "2", "--precision", "bf16");
    expect(r.err).toBe("");
    const n = JSON.parse(r.out) as { memory: { activations: number }; engine: Record<string, number | string> };
    expect(n.engine).toMatchObject({
      engine: "deepspeed", gpus: 8, nodes: 2, processes: 16,
      params: (all * 2) / 16,
      master: (trainable * 4) / 16,
      grads: (trainable * 4) / 16,
      optimizer: (trainable * 8) / 16,
      gathered: 2 * layer * 2,
      activations: n.memory.activations,
    });
    const e = n.engine as Record<string, number>;
    expect(e["total"]).toBe(e["params"]! + e["master"]! + e["grads"]! + e["optimizer"]! + e["gathered"]! + e["activations"]!);
  });

  it("DDP replicates: every GPU holds the whole model in f32", async () => {
    const n = JSON.parse((await plan("--json", "--engine", "ddp", "--gpus", "4")).out) as { engine: Record<string, number> };
    expect(n.engine).toMatchObject({ processes: 4, params: all * 4, master: 0, grads: trainable * 4, optimizer: trainable * 8, gathered: 0 });
  });

  it("prints the per-GPU line after the single-device estimate", async () => {
    const r = await plan("--engine", "fsdp", "--gpus", "8");
    const lines = r.out.trimEnd().split("\n");
    expect(lines.at(-2)).toMatch(/^memory estimate \(batch 1 x 512 tokens, f16\)/);
    expect(lines.at(-1)).toMatch(/^memory per GPU, FSDP FULL_SHARD on 8 GPUs x 1 node \(8 processes, f32\): params 2\.91 GiB, grads /);
    expect((all * 4) / 8 / 2 ** 30).toBeCloseTo(2.91, 2);
  });

  it("checks its flags", async () => {
    expect((await plan("--gpus", "8")).err).toContain("--gpus and --nodes go with --engine");
    expect((await plan("--engine", "zero3")).err).toContain("--engine takes deepspeed, fsdp, ddp, not 'zero3'");
    expect((await plan("--engine", "deepspeed", "--gpus", "-1")).code).toBe(1);
  });
});
