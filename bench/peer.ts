// The PyTorch peers of the training bench: bench/torch_peer.py run by Debian's python3 with torch,
// once on its default BLAS and once on OpenBLAS where libopenblas0-pthread is installed (OpenBLAS
// is put first on the library path of the peer's process only, so the system's choice of BLAS,
// update-alternatives, is left as it is); and bench/hf_peer.py, transformers + PEFT, run by the
// python of the bundle check's venv (accelerate/setup.sh) where there is one.

import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { HF_PYTHON } from "../accelerate/python.js";

export const PYTHON = process.env["PEFC_BENCH_PYTHON"] ?? "/usr/bin/python3";
const OPENBLAS_DIR = "/usr/lib/x86_64-linux-gnu/openblas-pthread";
const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), "torch_peer.py");
const HF_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), "hf_peer.py");

/**
 * "openblas" runs OpenBLAS's own threads (as many as torch's); "openblas-serial" keeps each BLAS
 * call on the torch thread that makes it. On 2 cores the first can run at a fraction of the
 * second's speed: OpenBLAS's workers wait for work spinning, on the cores torch's own intra-op
 * threads need (measured here: 65 against 367 ms a stories260K step, median of 12).
 */
export type Blas = "default" | "openblas" | "openblas-serial";

export interface PeerConfig {
  model: "llama" | "gpt2";
  config: Record<string, unknown>;
  batch: number;
  seq: number;
  rank: number;
  alpha: number;
  steps: number;
  threads: number;
}

export interface PeerResult {
  ms: number[];
  /** The peer process's CPU time over each timed step (all its threads), ms. */
  cpu_ms: number[];
  torch: string;
  transformers?: string;
  peft?: string;
}

/** The BLAS builds this machine can run the peer on. */
export function availableBlas(): Blas[] {
  return existsSync(join(OPENBLAS_DIR, "libblas.so.3")) ? ["default", "openblas", "openblas-serial"] : ["default"];
}

/** Runs the transformers + PEFT peer; a string says why it could not. */
export function runHfPeer(c: PeerConfig, timeoutMs = 30 * 60_000): PeerResult | string {
  if (!existsSync(HF_PYTHON)) return `no ${HF_PYTHON} (make it with npm run accelerate:setup, or set PEFC_HF_PYTHON)`;
  return runScript(HF_PYTHON, HF_SCRIPT, c, "default", timeoutMs);
}

/** Runs the peer; a string says why it could not (no python3, no torch, a failure). */
export function runPeer(c: PeerConfig, blas: Blas, timeoutMs = 30 * 60_000): PeerResult | string {
  return runScript(PYTHON, SCRIPT, c, blas, timeoutMs);
}

function runScript(python: string, script: string, c: PeerConfig, blas: Blas, timeoutMs: number): PeerResult | string {
  const dir = mkdtempSync(join(tmpdir(), "pefc-peer-"));
  try {
    const file = join(dir, "config.json");
    writeFileSync(file, JSON.stringify({ ...c.config, model: c.model, batch: c.batch, seq: c.seq, rank: c.rank, alpha: c.alpha, steps: c.steps, threads: c.threads }));
    const env: NodeJS.ProcessEnv = { ...process.env, OMP_NUM_THREADS: String(c.threads), OPENBLAS_NUM_THREADS: String(blas === "openblas-serial" ? 1 : c.threads) };
    if (blas !== "default") env["LD_LIBRARY_PATH"] = [OPENBLAS_DIR, process.env["LD_LIBRARY_PATH"]].filter(Boolean).join(":");
    const r = spawnSync(python, [script, file], { env, encoding: "utf8", timeout: timeoutMs });
    if (r.error) return `${python}: ${r.error.message}`;
    if (r.status !== 0) return `${python} ${basename(script)} exited ${r.status}: ${(r.stderr || "").trim().split("\n").slice(-1)[0] ?? ""}`;
    const out = JSON.parse(r.stdout.trim().split("\n").pop()!) as PeerResult;
    return out;
  } catch (e) {
    return (e as Error).message;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
