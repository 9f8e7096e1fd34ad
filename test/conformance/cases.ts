/**
 * The PEFT conformance cases under ../shared/data/peft-conformance/: every folder holding a
 * run.peft is a case (so a case added there is picked up as it is), and the README's table gives
 * PEFT's loss per optimizer step for each. The shared folder is read-only: a case runs in a
 * temporary mirror of the shared tree (real folders along the case's path, links for everything
 * else), so its relative paths resolve as they do in place and its export lands in the mirror.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve, sep } from "node:path";
import { readSafetensorsHeader, readTensorF32 } from "../../src/runtime/io/safetensors.js";

export const SHARED = resolve("../shared");
export const CASES_DIR = join(SHARED, "data/peft-conformance");

export interface ConformanceCase {
  name: string;
  dir: string;
  /** PEFT's loss per optimizer step, from the README's table. */
  losses: number[];
}

/** `| method | config | l1 l2 … |` rows of the README, by method name. */
export function readmeLosses(readme: string): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const line of readme.split("\n")) {
    const cells = line.split("|").map((c) => c.trim());
    if (cells.length < 5 || cells[0] !== "" || cells[cells.length - 1] !== "") continue;
    const [name, , losses] = cells.slice(1, -1) as [string, string, string];
    const nums = losses.split(/\s+/).map(Number);
    if (nums.length === 0 || nums.some((x) => !Number.isFinite(x)) || losses === "") continue;
    out.set(name, nums);
  }
  return out;
}

export function discoverCases(): ConformanceCase[] {
  const table = readmeLosses(readFileSync(join(CASES_DIR, "README.md"), "utf8"));
  return readdirSync(CASES_DIR)
    .filter((n) => existsSync(join(CASES_DIR, n, "run.peft")))
    .sort()
    .map((name) => {
      const losses = table.get(name);
      if (!losses) throw new Error(`${join(CASES_DIR, "README.md")}: the loss table has no row for case '${name}'`);
      return { name, dir: join(CASES_DIR, name), losses };
    });
}

/** A writable copy of the case's place in the shared tree; returns the mirrored case folder. */
export function mirrorCase(c: ConformanceCase): string {
  const root = mkdtempSync(join(tmpdir(), `pefc-conformance-${c.name}-`));
  const parts = relative(SHARED, c.dir).split(sep);
  let from = SHARED;
  let to = root;
  for (const part of [...parts, undefined]) {
    for (const entry of readdirSync(from)) {
      if (entry === part) continue;
      symlinkSync(join(from, entry), join(to, entry), statSync(join(from, entry)).isDirectory() ? "dir" : "file");
    }
    if (part === undefined) break;
    from = join(from, part);
    to = join(to, part);
    mkdirSync(to);
  }
  return to;
}

/** An adapter folder's config and every tensor of its adapter_model.safetensors, as f32. */
export async function readAdapter(dir: string): Promise<{ config: Record<string, unknown>; tensors: Map<string, { shape: number[]; data: Float32Array }> }> {
  const config = JSON.parse(readFileSync(join(dir, "adapter_config.json"), "utf8")) as Record<string, unknown>;
  const header = await readSafetensorsHeader(join(dir, "adapter_model.safetensors"));
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const t of header.tensors) tensors.set(t.name, { shape: [...t.shape], data: await readTensorF32(t) });
  return { config, tensors };
}

export function maxDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}
