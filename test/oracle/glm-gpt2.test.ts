// Oracle: glm_gpt2.py, a from-scratch PyTorch ChatGLM2 (THUDM's modeling_chatglm.py) and GPT-2
// (GPT2LMHeadModel) forward in float64. Against it: pefc's base graph built from each real
// checkpoint's config.json, loaded with its real weights, run by the CPU reference executor in f64
// on two rows (the second right-padded, labels -100) — loss, sampled logits and logit sums.
// The 1e-10 bound discriminates: in the oracle, half-split instead of interleaved RoPE, RoPE over the
// whole head, frequencies over kv_channels, swapped SwiGLU halves or kv group h % groups each move
// tiny-chatglm2's loss by 7e-3 or more; exact instead of tanh GELU, or per-layer attention scaling,
// move tiny-gpt2-d32's by 1e-4 or more (tiny-gpt2, 2 wide, barely feels the GELU: 6e-12).
// With prefixes (PEFT's prefix tuning / P-tuning v2 table), swapping the position rules (GPT-2
// numbering real tokens from 0, ChatGLM2 from P) moves the losses by 9e-4 (tiny-chatglm2), 5e-3
// (tiny-gpt2) and 0.23 (tiny-gpt2-d32).
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import type { ModelSpec } from "../../src/check/spec.js";
import { checkSource } from "../../src/frontend.js";
import type { Graph } from "../../src/ir/index.js";
import { compileSpec } from "../../src/passes/compile.js";
import { buildBaseGraph } from "../../src/models/graph/index.js";
import { profileFromConfig } from "../../src/models/profile.js";
import type { ModelProfile } from "../../src/models/types.js";
import { runGraph, scalar } from "../../src/runtime/reference/executor.js";
import { loadBaseWeights } from "../../src/runtime/train/weights.js";
import { PYTHON, torchAvailable } from "./torch.js";

const SCRIPT = fileURLToPath(new URL("./glm_gpt2.py", import.meta.url));
const MODELS = resolve(fileURLToPath(new URL("../../../shared/models", import.meta.url)));
const SAMPLE = 16;

interface ForwardResult {
  loss: number;
  logits_sample: number[];
  logits_sum: number;
  logits_abs_sum: number;
  logits_row1_last: number[];
}

const tmp: string[] = [];
afterAll(() => {
  for (const d of tmp) rmSync(d, { recursive: true, force: true });
});

function runOracle(cfg: object): Promise<ForwardResult> {
  const dir = mkdtempSync(join(tmpdir(), "pefc-glm-gpt2-"));
  tmp.push(dir);
  const file = join(dir, "config.json");
  writeFileSync(file, JSON.stringify(cfg));
  return new Promise((ok, fail) => {
    const child = spawn(PYTHON, [SCRIPT, file], { stdio: ["ignore", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (d: Buffer) => out.push(d));
    child.stderr.on("data", (d: Buffer) => err.push(d));
    child.on("error", fail);
    child.on("close", (code) => {
      if (code === 0) ok(JSON.parse(Buffer.concat(out).toString("utf8")) as ForwardResult);
      else fail(new Error(`glm_gpt2.py exited ${code}:\n${Buffer.concat(err).toString("utf8")}`));
    });
  });
}

/**
 * Two rows of T ids spread over the whole vocabulary (so the last rows of a 50257-entry table are
 * read too); row 1 holds `T - pad` real tokens, then `padId`, with labels -100 on the padding and on
 * its first token.
 */
function batch(vocab: number, T: number, pad: number, padId: number): { input_ids: number[][]; labels: number[][] } {
  const row = (r: number) => Array.from({ length: T }, (_, t) => (r * 7919 + t * 104729 + 3 * t * t + 11) % vocab);
  const r0 = row(0);
  const r1 = row(1).map((id, t) => (t < T - pad ? id : padId));
  const l1 = r1.map((id, t) => (t === 0 || t >= T - pad ? -100 : id));
  return { input_ids: [r0, r1], labels: [r0.slice(), l1] };
}

const SPAN = { line: 1, column: 1, endLine: 1, endColumn: 1, start: 0, end: 0 };

async function profileOf(dir: string): Promise<ModelProfile> {
  const config = JSON.parse(await readFile(join(dir, "config.json"), "utf8")) as Record<string, unknown>;
  const profile = profileFromConfig(config, dir);
  if (typeof profile === "string") throw new Error(`${dir}: pefc refuses the config: ${profile}`);
  return profile;
}

interface PefcForward {
  loss: number;
  logits: Float64Array;
  shape: number[];
}

/** The forward graph of `dir`, with `methods` (a .peft statement) injected when given. */
function forwardGraph(dir: string, profile: ModelProfile, methods?: string): Graph {
  if (!methods) return buildBaseGraph(profile);
  const fe = checkSource(`peft 0.1;\nmodel "${dir}";\nfreeze base;\n${methods}\ntrain { steps = 1; }\n`, join(dir, "oracle.peft"));
  if (!fe.ok) throw new Error(fe.diagnostics.map((d) => d.message).join("\n"));
  const r = compileSpec(fe.spec, { until: "require-trainable" });
  if (!r.graph) throw new Error(r.diagnostics.map((d) => d.message).join("\n"));
  return r.graph;
}

async function pefcForward(dir: string, ids: number[][], labels: number[][], prefix?: { methods: string; table: number[][] }): Promise<PefcForward> {
  const profile = await profileOf(dir);
  const g = forwardGraph(dir, profile, prefix?.methods);
  const model: ModelSpec = { source: dir, seed: 0, span: SPAN };
  const params = await loadBaseWeights(model, profile, g);
  if (prefix) params.set("prefix_encoder.embedding.weight", Float32Array.from(prefix.table.flat()));
  const B = ids.length;
  const T = ids[0]!.length;
  const vals = runGraph(g, {
    params,
    dtype: "f64",
    inputs: {
      input_ids: { data: Int32Array.from(ids.flat()), shape: [B, T] },
      labels: { data: Int32Array.from(labels.flat()), shape: [B, T] },
      positions: { data: Int32Array.from({ length: B * T }, (_, i) => i % T), shape: [B, T] },
    },
  });
  const logits = vals.get("logits");
  if (!logits || !(logits.data instanceof Float64Array)) throw new Error("no f64 logits");
  return { loss: scalar(vals, "loss"), logits: logits.data, shape: logits.shape };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Compares pefc's forward with the oracle's on two rows of `c`, at the bounds the base cases use. */
async function expectAgrees(c: (typeof CASES)[number], prefix?: { methods: string; table: number[][] }): Promise<void> {
  const dir = join(MODELS, c.name);
  const { input_ids, labels } = batch(c.vocab, c.T, c.pad, c.padId);
  const [want, got] = await Promise.all([
    runOracle({ arch: c.arch, model_dir: dir, input_ids, labels, dtype: "float64", ...(prefix ? { prefix: prefix.table } : {}) }),
    pefcForward(dir, input_ids, labels, prefix),
  ]);
  const V = c.vocab;
  expect(got.shape).toEqual([2, c.T, V]);
  const lastRow0 = got.logits.subarray((c.T - 1) * V, (c.T - 1) * V + SAMPLE);
  const lastRow1 = got.logits.subarray((2 * c.T - 1) * V, (2 * c.T - 1) * V + SAMPLE);
  let sum = 0;
  let abs = 0;
  for (const x of got.logits) {
    sum += x;
    abs += Math.abs(x);
  }
  const d = {
    loss: Math.abs(got.loss - want.loss),
    sample: maxAbsDiff(lastRow0, want.logits_sample),
    row1: maxAbsDiff(lastRow1, want.logits_row1_last),
    sum: Math.abs(sum - want.logits_sum),
    absSum: Math.abs(abs - want.logits_abs_sum),
  };
  console.log(`${c.name}${prefix ? ` with ${prefix.methods}` : ""}: pefc loss ${got.loss}, torch loss ${want.loss}; diffs ${JSON.stringify(d)}`);
  expect(Number.isFinite(want.loss)).toBe(true);
  expect(d.loss).toBeLessThan(1e-10);
  const scale = Math.max(1, ...want.logits_sample.map(Math.abs));
  expect(d.sample).toBeLessThan(1e-10 * scale);
  expect(d.row1).toBeLessThan(1e-10 * scale);
  expect(d.sum).toBeLessThan(1e-12 * want.logits_abs_sum + 1e-10);
  expect(d.absSum).toBeLessThan(1e-12 * want.logits_abs_sum + 1e-10);
}

/** A [P, 2·L·kvdim] prefix table of values exact in f32, spread over ±1. */
function prefixTable(P: number, width: number): number[][] {
  return Array.from({ length: P }, (_, p) => Array.from({ length: width }, (_, i) => Math.fround(Math.sin(1 + 0.37 * i + 1.9 * p))));
}

const CASES = [
  { name: "tiny-chatglm2", arch: "chatglm2", vocab: 256, T: 12, pad: 4, padId: 0 },
  { name: "tiny-gpt2", arch: "gpt2", vocab: 50257, T: 11, pad: 3, padId: 50256 },
  { name: "tiny-gpt2-d32", arch: "gpt2", vocab: 50257, T: 10, pad: 3, padId: 50256 },
] as const;

describe("ChatGLM2 and GPT-2 base forward: reference executor vs a PyTorch oracle, real checkpoints, f64", () => {
  it("has torch (apt-get install python3-torch)", () => {
    expect(torchAvailable()).toBe(true);
  });

  for (const c of CASES) {
    it(`${c.name}: with prefixes as PEFT passes them (positions as the model numbers them after a cache)`, async () => {
      const profile = await profileOf(join(MODELS, c.name));
      const { numLayers, numKvHeads, headDim } = profile.dims;
      const P = 3;
      const methods = c.arch === "chatglm2" ? `p_tuning_v2 tokens=${P};` : `prefix tokens=${P} { projection = false; }`;
      await expectAgrees(c, { methods, table: prefixTable(P, 2 * numLayers * numKvHeads * headDim) });
    });
  }

  for (const c of CASES) {
    it(`${c.name}: loss and logits agree`, async () => {
      const dir = join(MODELS, c.name);
      const profile = await profileOf(dir);
      expect(profile.arch).toBe(c.arch);
      expect(profile.dims.vocabSize).toBe(c.vocab);
      await expectAgrees(c);
    });
  }
});
