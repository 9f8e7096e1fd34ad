/**
 * Runs the PyTorch oracle (stories_lora.py) from the tests. It needs Debian's python3-torch, which
 * installs for /usr/bin/python3 only, so that interpreter is named explicitly rather than taken
 * from PATH.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const PYTHON = "/usr/bin/python3";
export const ORACLE_SCRIPT = fileURLToPath(new URL("./stories_lora.py", import.meta.url));

export interface OracleBatch {
  input_ids: number[][];
  labels: number[][];
  attention_mask?: number[][];
}

export interface OracleConfig {
  model_dir: string;
  adapter_dir: string;
  /** Micro-batches in run order; cycled when steps × grad_accum exceeds their number. */
  batches: OracleBatch[];
  optimizer: "sgd" | "adamw";
  lr: number;
  momentum?: number;
  weight_decay?: number;
  betas?: [number, number];
  eps?: number;
  grad_accum?: number;
  /** Max total gradient norm; 0 or absent: no clipping. */
  clip?: number;
  steps?: number;
  dtype?: "float64" | "float32";
}

export interface OracleResult {
  /** Per optimizer step: the mean of its micro-batch losses. */
  losses: number[];
  /** Every micro-batch's unscaled loss, in run order. */
  micro_losses: number[];
  /** Per step: total gradient norm before clipping. */
  grad_norms: number[];
  /** PEFT key → values after the last step, flattened row-major. */
  adapter: Record<string, number[]>;
}

let available: boolean | undefined;

/** Whether /usr/bin/python3 can import torch (cached for the process). */
export function torchAvailable(): boolean {
  available ??= spawnSync(PYTHON, ["-c", "import torch, numpy"], { stdio: "ignore" }).status === 0;
  return available;
}

/** Runs `python3 stories_lora.py` with its arguments; stdout on exit 0, else an Error with stderr. */
export function runOracleScript(args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, [ORACLE_SCRIPT, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (d: Buffer) => out.push(d));
    child.stderr.on("data", (d: Buffer) => err.push(d));
    child.on("error", reject);
    child.on("close", (code) => {
      const stdout = Buffer.concat(out).toString("utf8");
      if (code === 0) resolve(stdout);
      else reject(new Error(`stories_lora.py ${args.join(" ")} exited ${code}:\n${Buffer.concat(err).toString("utf8")}${stdout}`));
    });
  });
}

export async function runTorchOracle(config: OracleConfig): Promise<OracleResult> {
  const dir = mkdtempSync(join(tmpdir(), "pefc-oracle-"));
  try {
    const file = join(dir, "config.json");
    writeFileSync(file, JSON.stringify(config));
    return JSON.parse(await runOracleScript([file])) as OracleResult;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
