/**
 * Test helper: the tensor names and shapes of a real safetensors file, read from its header (8-byte
 * little-endian length, then JSON), and its config.json. Independent of src/ so the tests compare the
 * profiles against the files themselves.
 */
import { readFileSync, openSync, readSync, closeSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

export const MODELS = join(dirname(fileURLToPath(import.meta.url)), "../../../shared/models");

export interface TensorEntry {
  dtype: string;
  shape: number[];
}

export function safetensorsHeader(path: string): Map<string, TensorEntry> {
  const fd = openSync(path, "r");
  try {
    const lenBuf = Buffer.alloc(8);
    readSync(fd, lenBuf, 0, 8, 0);
    const len = Number(lenBuf.readBigUInt64LE(0));
    const json = Buffer.alloc(len);
    readSync(fd, json, 0, len, 8);
    const header = JSON.parse(json.toString("utf8")) as Record<string, unknown>;
    const out = new Map<string, TensorEntry>();
    for (const [name, v] of Object.entries(header)) {
      if (name === "__metadata__") continue;
      const e = v as { dtype: string; shape: number[] };
      out.set(name, { dtype: e.dtype, shape: e.shape });
    }
    return out;
  } finally {
    closeSync(fd);
  }
}

export function readConfig(folder: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(folder, "config.json"), "utf8")) as Record<string, unknown>;
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
