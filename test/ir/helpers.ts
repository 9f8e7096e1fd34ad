/** Profiles and checkpoint headers for the IR tests: real configs from ../shared/models and the built-ins. */
import { closeSync, openSync, readFileSync, readSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { builtinConfig } from "../../src/models/builtin.js";
import { profileFromConfig } from "../../src/models/profile.js";
import type { ModelProfile } from "../../src/models/types.js";

export const MODELS = fileURLToPath(new URL("../../../shared/models/", import.meta.url));

function profileOf(config: Record<string, unknown>, source: string): ModelProfile {
  const p = profileFromConfig(config, source);
  if (typeof p === "string") throw new Error(`${source}: ${p}`);
  return p;
}

export function builtinProfile(name: string): ModelProfile {
  const c = builtinConfig(name);
  if (!c) throw new Error(`no builtin ${name}`);
  return profileOf(c, `builtin:${name}`);
}

/** A profile from a model folder under ../shared/models (`tiny-chatglm2`, `stories260K/hf`). */
export function folderProfile(dir: string): ModelProfile {
  const config = JSON.parse(readFileSync(`${MODELS}${dir}/config.json`, "utf8")) as Record<string, unknown>;
  return profileOf(config, `${MODELS}${dir}`);
}

/** Tensor names and shapes from a safetensors file's header (the first 8 bytes give its length). */
export function safetensorsShapes(file: string): Map<string, number[]> {
  const fd = openSync(`${MODELS}${file}`, "r");
  const len = Buffer.alloc(8);
  readSync(fd, len, 0, 8, 0);
  const n = Number(len.readBigUInt64LE(0));
  const buf = Buffer.alloc(n);
  readSync(fd, buf, 0, n, 8);
  closeSync(fd);
  const header = JSON.parse(buf.toString("utf8")) as Record<string, { shape?: number[] }>;
  const out = new Map<string, number[]>();
  for (const [k, v] of Object.entries(header)) if (k !== "__metadata__" && v.shape) out.set(k, v.shape);
  return out;
}
