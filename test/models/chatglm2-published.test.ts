/**
 * ChatGLM2 as THUDM publishes chatglm2-6b — 7 bf16 pytorch_model-*.bin shards with their index,
 * tokenizer.model, tokenizer_config.json, config.json with auto_map — in a tiny fixture written by
 * Debian's torch and python3-sentencepiece (chatglm2_fixtures.py). The same tensors as .bin and as
 * safetensors give the same logits, and the torch oracle (test/oracle/glm_gpt2.py) agrees; the
 * medical records tokenize exactly as ChatGLM2's own preprocessing does; AdaLoRA trains on them;
 * pefc chat answers through ChatGLM2's round format with the history.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ModelSpec } from "../../src/check/spec.js";
import { main } from "../../src/cli/main.js";
import { formatDiagnostic } from "../../src/diagnostics/index.js";
import { checkSource } from "../../src/frontend.js";
import { buildBaseGraph } from "../../src/models/graph/index.js";
import { profileFromConfig } from "../../src/models/profile.js";
import { loadDataset } from "../../src/runtime/data/index.js";
import { runGraph, scalar } from "../../src/runtime/reference/executor.js";
import { loadTokenizer } from "../../src/runtime/tokenizer/index.js";
import { loadBaseWeights } from "../../src/runtime/train/weights.js";
import { chatglm2Fixtures } from "./chatglm2-fixtures.js";

const ORACLE = resolve("test/oracle/glm_gpt2.py");
const MEDICAL = resolve("examples/data/medical.jsonl");
const SPAN = { line: 1, column: 1, endLine: 1, endColumn: 1, start: 0, end: 0 };

let fx: string;
let glm: string;
let scratch: string;
beforeAll(() => {
  fx = chatglm2Fixtures();
  glm = join(fx, "chatglm2");
  scratch = mkdtempSync(join(tmpdir(), "pefc-chatglm2-"));
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

async function pefc(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(argv, { out: (s) => (out += `${s}\n`), err: (s) => (err += `${s}\n`) });
  return { code, out, err };
}

async function forward(dir: string, ids: number[][], labels: number[][]): Promise<{ loss: number; logits: Float64Array; V: number }> {
  const profile = profileFromConfig(JSON.parse(await readFile(join(dir, "config.json"), "utf8")) as Record<string, unknown>, dir);
  if (typeof profile === "string") throw new Error(profile);
  const g = buildBaseGraph(profile);
  const model: ModelSpec = { source: dir, seed: 0, span: SPAN };
  const params = await loadBaseWeights(model, profile, g);
  const [B, T] = [ids.length, ids[0]!.length];
  const vals = runGraph(g, {
    params,
    dtype: "f64",
    inputs: {
      input_ids: { data: Int32Array.from(ids.flat()), shape: [B, T] },
      labels: { data: Int32Array.from(labels.flat()), shape: [B, T] },
      positions: { data: Int32Array.from({ length: B * T }, (_, i) => i % T), shape: [B, T] },
    },
  });
  return { loss: scalar(vals, "loss"), logits: vals.get("logits")!.data as Float64Array, V: profile.dims.vocabSize };
}

function torchOracle(cfg: object): Promise<{ loss: number; logits_sample: number[]; logits_sum: number }> {
  const file = join(scratch, `oracle-${Date.now()}.json`);
  writeFileSync(file, JSON.stringify(cfg));
  return new Promise((ok, fail) => {
    const child = spawn("/usr/bin/python3", [ORACLE, file], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("close", (code) => (code === 0 ? ok(JSON.parse(out)) : fail(new Error(`glm_gpt2.py exited ${code}: ${err}`))));
  });
}

describe("ChatGLM2 in its published layout", () => {
  it("has exactly the published files", () => {
    for (const f of ["config.json", "pytorch_model.bin.index.json", "tokenizer.model", "tokenizer_config.json", ...Array.from({ length: 7 }, (_, i) => `pytorch_model-0000${i + 1}-of-00007.bin`)]) {
      expect(existsSync(join(glm, f)), f).toBe(true);
    }
    expect(JSON.parse(readFileSync(join(glm, "config.json"), "utf8")).auto_map.AutoModel).toBe("modeling_chatglm.ChatGLMForConditionalGeneration");
  });

  it("the .bin shards and the safetensors twin give identical logits; the torch oracle agrees", async () => {
    const T = 9;
    const ids = [Array.from({ length: T }, (_, t) => (t * 131 + 17) % 1005), Array.from({ length: T }, (_, t) => (t * 71 + 400) % 1005)];
    const labels = ids.map((r) => r.slice());
    const [bin, st, torch] = await Promise.all([
      forward(glm, ids, labels),
      forward(join(fx, "chatglm2-st"), ids, labels),
      torchOracle({ arch: "chatglm2", model_dir: join(fx, "chatglm2-st"), input_ids: ids, labels, dtype: "float64" }),
    ]);
    expect(Array.from(bin.logits)).toEqual(Array.from(st.logits));
    expect(bin.loss).toBe(st.loss);
    const sample = bin.logits.subarray((T - 1) * bin.V, (T - 1) * bin.V + 16);
    let sum = 0;
    for (const x of bin.logits) sum += x;
    const dLoss = Math.abs(bin.loss - torch.loss);
    const dSample = Math.max(...Array.from(sample, (x, i) => Math.abs(x - torch.logits_sample[i]!)));
    console.log(`chatglm2 .bin: pefc loss ${bin.loss}, torch ${torch.loss}; |dloss| ${dLoss}, max |dlogit| ${dSample}, |dsum| ${Math.abs(sum - torch.logits_sum)}`);
    expect(dLoss).toBeLessThan(1e-10);
    expect(dSample).toBeLessThan(1e-10);
  });

  it("tokenizes the medical records as ChatGLM2's preprocessing does ([gMASK] sop, build_prompt, eos)", async () => {
    const oracle = JSON.parse(readFileSync(join(fx, "tokenizer.json"), "utf8")) as { medical: { input_ids: number[]; labels: number[] }[] };
    const checked = checkSource(`model "${glm}";\ndata train "${MEDICAL}" { prompt = ask; response = answer; max_source = 128 tokens; max_target = 256 tokens; }\nlora on query_key_value;\ntrain { steps = 1; }\n`, join(scratch, "x.peft"));
    expect(checked.diagnostics.map(formatDiagnostic)).toEqual([]);
    const tokenizer = await loadTokenizer(glm);
    const profile = profileFromConfig(JSON.parse(readFileSync(join(glm, "config.json"), "utf8")) as Record<string, unknown>, glm);
    if (typeof profile === "string") throw new Error(profile);
    const { examples } = await loadDataset(checked.spec.data.train!, { baseDir: scratch, tokenizer, template: profile.chatTemplate, vocabSize: profile.dims.vocabSize });
    oracle.medical.forEach((want, i) => {
      expect(Array.from(examples[i]!.inputIds), `record ${i + 1}`).toEqual(want.input_ids);
      expect(Array.from(examples[i]!.labels), `record ${i + 1}`).toEqual(want.labels);
    });
  });

  it("trains AdaLoRA on the medical data, and pefc chat answers with the history in ChatGLM2's rounds", async () => {
    const spec = join(scratch, "medical.peft");
    writeFileSync(
      spec,
      `model "${glm}";
data train "${MEDICAL}" { prompt = ask; response = answer; max_source = 128 tokens; max_target = 256 tokens; }
freeze base;
adalora r=2 alpha=32 dropout=0.0 on query_key_value { init_r = 4; tinit = 1 steps; tfinal = 1 steps; delta_t = 1 steps; }
train { steps = 4; batch = 2; lr = 0.02; optimizer = adamw; }
save to "adapter";
`,
    );
    const run = await pefc("run", "--device", "reference", spec);
    expect(run.err).toBe("");
    expect(run.code).toBe(0);
    const adapter = join(scratch, "adapter");
    const cfg = JSON.parse(readFileSync(join(adapter, "adapter_config.json"), "utf8")) as { peft_type: string; target_modules: string[] | string };
    expect(cfg.peft_type).toBe("ADALORA");
    const losses = readFileSync(join(adapter, "metrics.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { loss?: number })
      .filter((m) => typeof m.loss === "number");
    expect(losses.length).toBeGreaterThan(0);
    expect(losses.every((m) => Number.isFinite(m.loss))).toBe(true);

    const q1 = "血压多少算高血压？";
    const q2 = "平时饮食要注意什么？";
    const N = "6";
    // Sampled (seeded), so that what the model reads — with or without the history — shows in what it writes.
    const SAMPLING = ["--temperature", "1", "--seed", "3"];
    const chat = spawnSync(process.execPath, ["--import", "tsx", resolve("src/cli/main-bin.ts"), "chat", "--device", "reference", "--model", glm, "--adapter", adapter, "--max-new-tokens", N, ...SAMPLING], {
      input: `${q1}\n${q2}\nexit\n`,
      encoding: "utf8",
    });
    expect(chat.stderr).toBe("");
    expect(chat.status).toBe(0);
    // The same answers, one generate call per round, the prompt written out as build_prompt does.
    const answer = async (prompt: string): Promise<string> => {
      const g = await pefc("generate", "--device", "reference", "--model", glm, "--adapter", adapter, "--prompt", prompt, "--max-new-tokens", N, ...SAMPLING);
      expect(g.code).toBe(0);
      return g.out.slice(prompt.length, -1).trim();
    };
    const a1 = await answer(`[Round 1]\n\n问：${q1}\n\n答：`);
    const a2 = await answer(`[Round 1]\n\n问：${q1}\n\n答：${a1}\n\n[Round 2]\n\n问：${q2}\n\n答：`);
    const templated = await pefc("generate", "--device", "reference", "--model", glm, "--adapter", adapter, "--template", "model", "--prompt", q1, "--max-new-tokens", N, ...SAMPLING);
    expect(templated.out).toBe(`${a1}\n`); // generate --template model: the model's round format, the answer alone
    // Merged into the .bin base and written out as safetensors (with tokenizer.model), it answers alike.
    const merged = join(scratch, "merged");
    const m = await pefc("merge", "--model", glm, "--adapter", adapter, "--out", merged);
    expect(m.code).toBe(0);
    const fromMerged = await pefc("generate", "--device", "reference", "--model", merged, "--template", "model", "--prompt", q1, "--max-new-tokens", N, ...SAMPLING);
    expect(fromMerged.out).toBe(templated.out);
    const alone = await answer(`[Round 1]\n\n问：${q2}\n\n答：`);
    console.log(`chat: ${JSON.stringify(chat.stdout)}; round 2 without history: ${JSON.stringify(alone)}`);
    expect(chat.stdout).toBe(`${a1}\n${a2}\n`);
    expect(a2).not.toBe(alone);
  });
});

describe("ChatGLM2 .bin shards on the WebGPU device", () => {
  it("stream into device buffers and generate what the CPU reference generates", async () => {
    const args = ["--model", glm, "--template", "model", "--prompt", "血压多少算高血压？", "--max-new-tokens", "8"];
    const gpu = await pefc("generate", "--device", "gpu", ...args);
    const ref = await pefc("generate", "--device", "reference", ...args);
    expect(gpu.err).toBe("");
    expect(gpu.code).toBe(0);
    expect(gpu.out.trim().length).toBeGreaterThan(0);
    expect(gpu.out).toBe(ref.out);
  });
});

describe("model paths name environment variables", () => {
  it("expands ${NAME}, and P420 names an unset one", () => {
    process.env.PEFC_TEST_GLM = glm;
    const ok = checkSource('model "${PEFC_TEST_GLM}";\nlora on query_key_value;\ntrain { steps = 1; }\n', "a.peft");
    expect(ok.diagnostics).toEqual([]);
    expect(ok.spec.model!.source).toBe(glm);
    delete process.env.PEFC_TEST_GLM_UNSET;
    const bad = checkSource('model "${PEFC_TEST_GLM_UNSET}/x";\nlora on query_key_value;\ntrain { steps = 1; }\n', "b.peft");
    expect(bad.diagnostics.map(formatDiagnostic)).toEqual(['b.peft:1:7: error P420: the model path "${PEFC_TEST_GLM_UNSET}/x" names the environment variable PEFC_TEST_GLM_UNSET, which is not set']);
  });
});

describe("examples/chatglm2-6b-medical.peft", () => {
  it("plans the seed on chatglm2-6b's config.json: PEFT's 0.0468% line, a memory estimate, and which files a run would miss", async () => {
    const saved = process.env.CHATGLM2_6B;
    process.env.CHATGLM2_6B = resolve("../shared/models/chatglm2-6b-config");
    try {
      const r = await pefc("plan", "examples/chatglm2-6b-medical.peft");
      expect(r.code).toBe(0);
      expect(r.out).toContain("trainable params: 2,924,880 || all params: 6,246,508,908 || trainable%: 0.0468");
      expect(r.out).toMatch(/memory estimate \(batch 1 x \d+ tokens, f16\): weights 11\.\d+ GiB/);
      expect(r.err).toContain(`${process.env.CHATGLM2_6B} holds no weights`);
      expect(r.err).toContain(`${process.env.CHATGLM2_6B}/tokenizer.model (or tokenizer.json) is missing`);
      process.env.CHATGLM2_6B = join(scratch, "absent-folder");
      const missing = await pefc("plan", "examples/chatglm2-6b-medical.peft");
      expect(missing.code).toBe(1);
      expect(missing.err).toContain(`error P408: cannot read the model '${join(scratch, "absent-folder")}': no such folder`);
      delete process.env.CHATGLM2_6B;
      expect((await pefc("plan", "examples/chatglm2-6b-medical.peft")).err).toContain("error P420");
    } finally {
      if (saved === undefined) delete process.env.CHATGLM2_6B;
      else process.env.CHATGLM2_6B = saved;
    }
  });
});
