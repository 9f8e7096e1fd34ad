// Per-device kernel choices measured once and kept on disk, so the micro-benchmark runs on a
// machine's first use only. The cache is an optimisation: unreadable, corrupt or unwritable
// files are ignored and the choice is simply measured again.

import { mkdir, readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { writeFileAtomic } from "../io/atomic.js";

export interface CachedChoice {
  variant: string;
  /** What each candidate measured, GFLOP/s. */
  gflops: Record<string, number>;
  /** The problem measured, e.g. "256x512x512". */
  shape: string;
  at: string;
}

interface CacheFile {
  version: 1;
  /** device key → kernel family ("matmul") → choice */
  devices: Record<string, Record<string, CachedChoice>>;
}

/** pefc's cache folder: $XDG_CACHE_HOME/pefc, or ~/.cache/pefc. */
export function pefcCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env["XDG_CACHE_HOME"] && env["XDG_CACHE_HOME"].length > 0 ? env["XDG_CACHE_HOME"] : join(homedir(), ".cache");
  return join(base, "pefc");
}

export function defaultKernelCacheFile(env: NodeJS.ProcessEnv = process.env): string {
  return join(pefcCacheDir(env), "kernels.json");
}

async function load(file: string): Promise<CacheFile> {
  try {
    const data = JSON.parse(await readFile(file, "utf8")) as Partial<CacheFile>;
    if (data.version === 1 && data.devices && typeof data.devices === "object") return data as CacheFile;
  } catch {
    // missing or unreadable: start afresh
  }
  return { version: 1, devices: {} };
}

export async function readChoice(file: string, deviceKey: string, family: string): Promise<CachedChoice | undefined> {
  const c = (await load(file)).devices[deviceKey]?.[family];
  return c && typeof c.variant === "string" ? c : undefined;
}

/** Records a choice; returns false (never throws) when the file cannot be written. */
export async function writeChoice(file: string, deviceKey: string, family: string, choice: CachedChoice): Promise<boolean> {
  try {
    const data = await load(file);
    (data.devices[deviceKey] ??= {})[family] = choice;
    await mkdir(dirname(file), { recursive: true });
    await writeFileAtomic(file, JSON.stringify(data, null, 2) + "\n");
    return true;
  } catch {
    return false;
  }
}
