/**
 * `pefc plan` prints the numbers PEFT's print_trainable_parameters() prints. Every expected number
 * here is derived by hand from the configs (ChatGLM2-6B's real config, stories260K's), not taken
 * from pefc's output.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";

const dir = mkdtempSync(join(tmpdir(), "pefc-plan-"));
const stories = resolve("../shared/models/stories260K/hf");

async function plan(name: string, src: string, json = true): Promise<{ code: number; out: string; err: string }> {
  const file = join(dir, `${name}.peft`);
  writeFileSync(file, src);
  let out = "";
  let err = "";
  const code = await main(["plan", ...(json ? ["--json"] : []), file], { out: (s) => (out += `${s}\n`), err: (s) => (err += `${s}\n`) });
  return { code, out, err };
}

const fmt = (n: number) => n.toLocaleString("en-US");
const line = (t: number, a: number) => `trainable params: ${fmt(t)} || all params: ${fmt(a)} || trainable%: ${((100 * t) / a).toFixed(4)}`;

// ChatGLM2-6B (config.json): hidden 4096, 28 layers, ffn 13696, 2 kv groups x 128, vocab 65024.
const glmLayer = 4096 + (4096 * 4608 + 4608) + 4096 * 4096 + 4096 + 4096 * 27392 + 13696 * 4096;
const glmBase = 28 * glmLayer + 65024 * 4096 * 2 + 4096;
// stories260K: hidden 64, 5 layers, 8 heads / 4 kv heads of 8, ffn 172, vocab 512, tied head.
const storiesLayer = 64 * 64 + 2 * (64 * 32) + 64 * 64 + 3 * (64 * 172) + 2 * 64;
const storiesBase = 512 * 64 + 5 * storiesLayer + 64;

describe("pefc plan prints PEFT's counts", () => {
  it("the seed experiment on the real ChatGLM2-6B config (AdaLoRA builds at init_r = 12)", async () => {
    expect(glmBase).toBe(6_243_584_000);
    const trainable = 28 * 12 * (4096 + 1 + 4608);
    const all = glmBase + trainable + 28; // + one frozen ranknum scalar per adapted module
    const r = await plan(
      "seed",
      `model "${resolve("../shared/models/chatglm2-6b-config")}";
freeze base;
adalora r=8 alpha=32 dropout=0.01 on query_key_value { init_r = 12; tinit = 200; tfinal = 1000; delta_t = 10; }
train { steps = 3000; batch = 1; grad_accum = 16; lr = 1e-4; optimizer = adamw; clip = 1.0; precision = f16; }`,
    );
    expect(r.err).toBe("");
    const n = JSON.parse(r.out) as { peftLine: string; trainable: number; all: number; schedule: { adalora: { initBudget: number; targetBudget: number; budgetSteps: number[] } } };
    expect(n.peftLine).toBe(line(trainable, all));
    expect(n.peftLine).toBe("trainable params: 2,924,880 || all params: 6,246,508,908 || trainable%: 0.0468");
    expect(n.schedule.adalora).toMatchObject({ initBudget: 28 * 12, targetBudget: 28 * 8, budgetSteps: [200, 2000] });
  });

  it("LoRA r=8 on stories260K's q_proj and v_proj", async () => {
    const trainable = 5 * (8 * (64 + 64) + 8 * (64 + 32));
    const r = await plan("lora", `model "${stories}";\nlora r=8 on q_proj, v_proj;\ntrain { steps = 1; }`);
    expect(JSON.parse(r.out).peftLine).toBe(line(trainable, storiesBase + trainable));
  });

  it("IA3 on stories260K: output-side k and v, input-side down_proj", async () => {
    const trainable = 5 * (32 + 32 + 172);
    const r = await plan("ia3", `model "${stories}";\nia3 on k_proj, v_proj, down_proj;\ntrain { steps = 1; }`);
    expect(JSON.parse(r.out).peftLine).toBe(line(trainable, storiesBase + trainable));
  });

  it("prompt tuning with 10 virtual tokens on stories260K", async () => {
    const trainable = 10 * 64;
    const r = await plan("prompt", `model "${stories}";\nprompt_tuning tokens=10;\ntrain { steps = 1; }`);
    expect(JSON.parse(r.out).peftLine).toBe(line(trainable, storiesBase + trainable));
  });

  it("steps per epoch and total steps from the data, without reading weights", async () => {
    writeFileSync(join(dir, "d.jsonl"), Array.from({ length: 37 }, (_, i) => JSON.stringify({ q: `q${i}`, a: `a${i}` })).join("\n"));
    const r = await plan("steps", `model "builtin:tiny-llama";\ndata train "d.jsonl" { prompt = q; response = a; }\nlora;\ntrain { epochs = 3; batch = 2; grad_accum = 4; warmup = 10%; }`);
    const n = JSON.parse(r.out) as { schedule: Record<string, number> };
    // 37 records -> 19 micro-batches of 2 -> 5 optimizer steps of 4 (the last one short).
    expect(n.schedule).toMatchObject({ records: 37, stepsPerEpoch: 5, totalSteps: 15, effectiveBatch: 8, warmupSteps: 2 });
  });

  it("reports FLOPs per step, and what pruning the backward saves", async () => {
    const r = await plan("flops", `model "builtin:chatglm2-6b";\nlora r=8 on query_key_value in layers[-2:];\ntrain { steps = 1; }`);
    const f = (JSON.parse(r.out) as { flops: { forward: number; backward: number; unprunedBackward: number; seqLen: number } }).flops;
    // Forward of a dense decoder is about 2 FLOPs per parameter per token, plus attention.
    const tokens = f.seqLen;
    expect(f.forward / (2 * glmBase * tokens)).toBeGreaterThan(0.95);
    expect(f.forward / (2 * glmBase * tokens)).toBeLessThan(1.15);
    // Adapting only the last two of 28 layers: backward runs through 2 layers and the head, not 28.
    expect(f.backward).toBeLessThan(0.2 * f.unprunedBackward);
  });

  it("refuses a wrong target before any weight is read, naming the real candidates", async () => {
    const r = await plan("wrong", `model "${resolve("../shared/models/chatglm2-6b-config")}";\nlora r=8 on q_proj;\ntrain { steps = 1; }`, false);
    expect(r.code).toBe(1);
    expect(r.err).toContain("2:13: error P401: 'q_proj' matched nothing in chatglm2; linear modules are query_key_value, dense, dense_h_to_4h, dense_4h_to_h");
  });

  it("prints per-term matches, shapes and the summary line as text", async () => {
    const r = await plan("text", `model "builtin:chatglm2-6b";\nlora r=8 on query_key_value in layers[-4:];\ntrain { steps = 10; }`, false);
    expect(r.code).toBe(0);
    expect(r.out).toContain("query_key_value in layers[-4:] -> 4 modules");
    expect(r.out).toContain("transformer.encoder.layers.{24..27}.self_attention.query_key_value  4096->4608");
    expect(r.out).toContain(line(4 * 8 * (4096 + 4608), glmBase + 4 * 8 * (4096 + 4608)));
  });
});
