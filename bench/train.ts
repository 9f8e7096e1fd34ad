// Training-step benchmarks for `npm run bench`: ms per step and tokens/s of a LoRA step on the
// stories260K shape (batch 8 x 128 tokens) and on a GPT-2-small-shaped model, fused against
// unfused codegen, dispatches per step and peak device memory, and the same stories step on the
// CPU reference; and with --train, pefc's step against a hand-written PyTorch peer and against
// transformers + PEFT on the same shapes (benchTrainVsTorch). Models and data are synthetic
// (seeded) so the bench needs no files.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { builtinConfig } from "../src/models/builtin.js";
import { Prng } from "../src/models/prng.js";
import { compileSpec } from "../src/passes/compile.js";
import { dispatchesPerStep } from "../src/codegen/wgsl/program/index.js";
import { openGpuBackend } from "../src/runtime/gpu/index.js";
import { writeSafetensors, type TensorToWrite } from "../src/runtime/io/index.js";
import { median, type Device } from "../src/runtime/device/index.js";
import { DeviceLimitError } from "../src/codegen/wgsl/caps.js";
import { ReferenceBackend } from "../src/runtime/train/reference-backend.js";
import { epochGroups } from "../src/runtime/train/loop.js";
import { allParams, prepareSession, type Session } from "../src/runtime/train/session.js";
import { profileFromConfig } from "../src/models/profile.js";
import { availableBlas, PYTHON, runHfPeer, runPeer, type PeerConfig } from "./peer.js";

interface TrainCase {
  name: string;
  config: Record<string, unknown>;
  method: string;
  batch: number;
  seq: number;
  steps: number;
  reference: boolean;
  precision: "f32" | "f16";
  /** Micro-batches of `batch` rows per optimizer step (default 1). */
  gradAccum?: number;
}

const STORIES = {
  model_type: "llama", hidden_size: 64, intermediate_size: 172, num_hidden_layers: 5, num_attention_heads: 8,
  num_key_value_heads: 4, head_dim: 8, vocab_size: 512, max_position_embeddings: 512, rms_norm_eps: 1e-5,
  rope_theta: 10000, hidden_act: "silu", tie_word_embeddings: true, bos_token_id: 1, eos_token_id: 2,
};

export const TRAIN_CASES: TrainCase[] = [
  { name: "stories260K LoRA r=8 q,v (8 x 128)", config: STORIES, method: "lora r=8 alpha=16 on q_proj, v_proj;", batch: 8, seq: 128, steps: 9, reference: true, precision: "f32" },
  { name: "GPT-2-small LoRA r=8 c_attn (1 x 128, f16 base)", config: builtinConfig("gpt2")!, method: "lora r=8 alpha=16 on c_attn;", batch: 1, seq: 128, steps: 3, reference: false, precision: "f16" },
];

/** A checkpoint folder with seeded N(0, 0.02) weights (f16 on disk), norms at 1. */
export async function syntheticModel(dir: string, config: Record<string, unknown>): Promise<void> {
  const profile = profileFromConfig(config, dir);
  if (typeof profile === "string") throw new Error(profile);
  const rng = new Prng(7);
  const tensors: TensorToWrite[] = [];
  for (const m of profile.modules) {
    for (const p of m.params) {
      const n = p.shape.reduce((a, b) => a * b, 1);
      const data = new Float32Array(n);
      const norm = m.kind === "rmsnorm" || m.kind === "layernorm";
      if (norm && p.name.endsWith(".weight")) data.fill(1);
      else if (!p.name.endsWith(".bias")) for (let i = 0; i < n; i++) data[i] = rng.normal(0, 0.02);
      tensors.push({ name: p.name, dtype: "F16", shape: p.shape, data });
    }
  }
  writeFileSync(join(dir, "config.json"), JSON.stringify(config));
  await writeSafetensors(join(dir, "model.safetensors"), tensors, { format: "pt" });
}

export async function session(c: TrainCase, dir: string): Promise<Session> {
  const vocab = Number(c.config.vocab_size);
  const rng = new Prng(11);
  const accum = c.gradAccum ?? 1;
  const rows = Array.from({ length: c.batch * accum * (c.steps + 1) }, () => ({ input_ids: Array.from({ length: c.seq }, () => 3 + Math.floor(rng.uniform() * (vocab - 3))) }));
  writeFileSync(join(dir, "data.jsonl"), rows.map((r) => JSON.stringify(r)).join("\n"));
  const spec = `model "${dir}";\ndata train "data.jsonl" { shuffle = false; }\n${c.method}\ntrain { steps = ${c.steps}; batch = ${c.batch};${accum > 1 ? ` grad_accum = ${accum};` : ""} lr = 1e-3; precision = ${c.precision}; }\n`;
  writeFileSync(join(dir, "bench.peft"), spec);
  return prepareSession(new TextEncoder().encode(spec), join(dir, "bench.peft"));
}

export interface TrainResult {
  msPerStep: number;
  tokensPerSecond: number;
  dispatches: number;
  peakBytes: number;
}

async function timeSteps(step: (g: number) => Promise<unknown>, n: number): Promise<number[]> {
  await step(0); // pipelines, caches
  const ms: number[] = [];
  for (let i = 1; i <= n; i++) {
    const t0 = performance.now();
    await step(i);
    ms.push(performance.now() - t0);
  }
  return ms;
}

export async function benchTraining(dev: Device, log: (s: string) => void): Promise<void> {
  log("\ntraining steps (LoRA, AdamW, clip 1.0; ms per optimizer step, median)");
  for (const c of TRAIN_CASES) {
    const dir = mkdtempSync(join(tmpdir(), "pefc-bench-"));
    try {
      await syntheticModel(dir, c.config);
      const s = await session(c, dir);
      const groups = epochGroups(s.train, s, 0, 0);
      const tokens = c.batch * c.seq;
      // Both programs side by side, their steps alternated, so a drift in the machine's speed
      // (a shared VM's varies by tens of percent over minutes) falls on both alike.
      const open = async (fuse: boolean) => {
        const graph = fuse ? s.trainGraph : compileSpec(s.spec, { baseDir: dir, fuse: false }).graph!;
        return openGpuBackend({ ...s, trainGraph: graph }, dev, { fusedUpdate: fuse });
      };
      const variants = [
        { label: "fused", b: await open(true), ms: [] as number[] },
        { label: "unfused", b: await open(false), ms: [] as number[] },
      ];
      for (const v of variants) await v.b.step(groups[0]!, 1e-3); // pipelines, caches
      for (let i = 1; i <= c.steps; i++)
        for (const v of variants) {
          const t0 = performance.now();
          await v.b.step(groups[i % groups.length]!, 1e-3);
          v.ms.push(performance.now() - t0);
        }
      const ms = variants.map((v) => median(v.ms));
      variants.forEach((v, k) => {
        const d = dispatchesPerStep(v.b.program, 1);
        log(`  ${c.name.padEnd(38)} ${v.label.padEnd(8)} ${ms[k]!.toFixed(1).padStart(8)} ms  ${((tokens * 1000) / ms[k]!).toFixed(0).padStart(6)} tok/s  ${String(d).padStart(4)} dispatches  peak ${(v.b.program.memory.peakBytes / 2 ** 20).toFixed(1)} MiB`);
        v.b.dispose();
      });
      log(`  ${"".padEnd(38)} fused is ${(ms[1]! / ms[0]!).toFixed(2)}x the speed of unfused (median of ${c.steps} alternated steps each)`);
      if (c.reference) {
        const ref = new ReferenceBackend(s.trainGraph, s.evalGraph, await allParams(s), 0);
        const ms = median(await timeSteps((g) => ref.step(groups[g % groups.length]!, 1e-3), 1));
        log(`  ${c.name.padEnd(38)} ${"reference".padEnd(8)} ${ms.toFixed(1).padStart(8)} ms  ${((tokens * 1000) / ms).toFixed(0).padStart(6)} tok/s  (CPU reference executor)`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

interface VsTorchCase {
  name: string;
  pefc: TrainCase;
  peer: Omit<PeerConfig, "steps" | "threads"> & { steps: number; defaultBlas: boolean };
}

const GPT2 = builtinConfig("gpt2")!;
const VS_TORCH: VsTorchCase[] = [
  {
    name: "stories260K LoRA r=8 q,v, 8 x 128",
    pefc: TRAIN_CASES[0]!,
    peer: { model: "llama", config: STORIES, batch: 8, seq: 128, rank: 8, alpha: 16, steps: 6, defaultBlas: true },
  },
  {
    name: "GPT-2 small LoRA r=8 c_attn, 1 x 128",
    pefc: TRAIN_CASES[1]!,
    peer: { model: "gpt2", config: GPT2, batch: 1, seq: 128, rank: 8, alpha: 16, steps: 2, defaultBlas: true },
  },
  {
    name: "GPT-2 small LoRA r=8 c_attn, 4 x 512",
    pefc: { ...TRAIN_CASES[1]!, name: "GPT-2-small LoRA r=8 c_attn (4 x 512, f16 base)", batch: 4, seq: 512, steps: 1 },
    // The reference BLAS takes minutes a step at this size.
    peer: { model: "gpt2", config: GPT2, batch: 4, seq: 512, rank: 8, alpha: 16, steps: 1, defaultBlas: false },
  },
];

function range(ms: readonly number[]): string {
  const s = [...ms].sort((a, b) => a - b);
  return s.length > 1 ? `${s[0]!.toFixed(1)}–${s[s.length - 1]!.toFixed(1)}` : s[0]!.toFixed(1);
}

/**
 * The CPU a side's steps took (its process's threads together, median) and how many cores that
 * kept busy over the median step. Wall time alone hides a host that runs this VM's cores only part
 * of the time: the CPU per step stays put while the wall time and the cores busy move.
 */
function cpuNote(wallMedian: number, cpu: readonly number[]): string {
  const c = median(cpu);
  return `CPU ${c.toFixed(1)} ms a step, ${(c / wallMedian).toFixed(2)} cores busy`;
}

/**
 * `npm run bench -- --train`: pefc's LoRA step against the PyTorch peer (bench/torch_peer.py) on
 * the same shapes, in one process order: pefc's steps, the peer on each BLAS, pefc's steps again,
 * so a drift in the machine's speed shows as a spread between pefc's two rounds. pefc's steps run
 * as its trainer runs them, each submitted before the previous one's loss is read (see round()).
 * The ratio is pefc's tokens/s over the peer's, from the medians.
 */
export async function benchTrainVsTorch(dev: Device, log: (s: string) => void, o: { quick: boolean; threads: number }): Promise<void> {
  const blas = availableBlas();
  log(`\npefc vs PyTorch (${PYTHON}, ${o.threads} threads; BLAS: ${blas.join(", ")}), LoRA + AdamW + clip 1.0, ms per optimizer step`);
  for (const c of o.quick ? VS_TORCH.slice(0, 2) : VS_TORCH) {
    const dir = mkdtempSync(join(tmpdir(), "pefc-bench-"));
    try {
      await syntheticModel(dir, c.pefc.config);
      let pc = c.pefc;
      let s = await session(pc, dir);
      const tokens = pc.batch * pc.seq;
      const t0 = performance.now();
      let b: Awaited<ReturnType<typeof openGpuBackend>>;
      try {
        b = await openGpuBackend(s, dev);
      } catch (e) {
        // The same tokens per optimizer step as micro-batches of one row, as a user of this device
        // would run it; the peer keeps the whole batch.
        if (!(e instanceof DeviceLimitError) || pc.batch === 1) throw e;
        log(`  ${c.name}: ${e.message.split(";")[0]}; pefc runs it as ${pc.batch} micro-batches of 1 x ${pc.seq} per step (grad_accum = ${pc.batch})`);
        pc = { ...pc, batch: 1, gradAccum: pc.batch };
        s = await session(pc, dir);
        b = await openGpuBackend(s, dev);
      }
      const groups = epochGroups(s.train, s, 0, 0);
      await b.step(groups[0]!, 1e-3);
      const firstMs = performance.now() - t0;
      const pefcMs: number[] = [];
      const pefcCpu: number[] = [];
      const aloneMs: number[] = [];
      // pefc's steps are timed as its trainer runs them (src/runtime/train/loop.ts): the next step
      // is submitted before this one's loss is awaited, and a step's time is from the previous
      // step's loss to its own. A few steps awaited one at a time, submitted to an idle device,
      // give the latency of one step alone beside it.
      const round = async () => {
        let g = 1;
        const next = () => b.step(groups[g++ % groups.length]!, 1e-3);
        await next();
        let t = performance.now();
        let c0 = process.cpuUsage();
        let pending = next();
        for (let i = 1; i <= pc.steps; i++) {
          const current = pending;
          if (i < pc.steps) pending = next();
          await current;
          const now = performance.now();
          const c = process.cpuUsage(c0);
          pefcMs.push(now - t);
          pefcCpu.push((c.user + c.system) / 1000);
          t = now;
          c0 = process.cpuUsage();
        }
        for (let i = 0; i < 3; i++) {
          const t1 = performance.now();
          await next();
          aloneMs.push(performance.now() - t1);
        }
      };
      await round();
      const peers: { label: string; ms?: number[]; cpu?: number[]; why?: string }[] = [];
      for (const k of blas) {
        if (k === "default" && !c.peer.defaultBlas) {
          peers.push({ label: `torch ${k} BLAS`, why: "skipped at this size (minutes a step)" });
          continue;
        }
        const r = runPeer({ ...c.peer, threads: o.threads }, k);
        peers.push(typeof r === "string" ? { label: `torch ${k} BLAS`, why: r } : { label: `torch ${k} BLAS (torch ${r.torch})`, ms: r.ms, cpu: r.cpu_ms });
      }
      const hf = runHfPeer({ ...c.peer, threads: o.threads });
      peers.push(typeof hf === "string" ? { label: "transformers + PEFT", why: hf } : { label: `transformers ${hf.transformers} + PEFT ${hf.peft} (torch ${hf.torch})`, ms: hf.ms, cpu: hf.cpu_ms });
      await round();
      b.dispose();
      const mine = median(pefcMs);
      log(`  ${c.name}`);
      log(`    pefc on ${b.device.padEnd(28)} ${mine.toFixed(1).padStart(9)} ms  ${((tokens * 1000) / mine).toFixed(0).padStart(7)} tok/s  (steps ${range(pefcMs)} ms; ${cpuNote(mine, pefcCpu)}; first step with compiles ${(firstMs / 1000).toFixed(1)} s; one step awaited alone ${median(aloneMs).toFixed(1)} ms)`);
      for (const p of peers) {
        if (!p.ms) {
          log(`    ${p.label}: ${p.why}`);
          continue;
        }
        const m = median(p.ms);
        log(`    ${p.label.padEnd(36)} ${m.toFixed(1).padStart(9)} ms  ${((tokens * 1000) / m).toFixed(0).padStart(7)} tok/s  (steps ${range(p.ms)} ms${p.cpu ? `; ${cpuNote(m, p.cpu)}` : ""})  pefc/peer tokens/s ${(m / mine).toFixed(2)}x`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}
