/**
 * Writes a Hugging Face model folder (config.json + model.safetensors) for merged weights, swapped
 * in as a whole like adapter folders. As transformers' save_pretrained does: config.json is
 * json.dumps(indent=2, sort_keys=True) plus a newline, the safetensors metadata is
 * {"format": "pt"}, and a head tied to the input embeddings is written once, under the
 * embedding's name (the head's own key is dropped; loading re-ties it).
 */
import { join } from "node:path";
import type { ModelProfile } from "../../models/types.js";
import { replaceDirAtomic, writeFileAtomic, type AtomicOptions } from "../io/atomic.js";
import { writeOwnerMarker } from "../io/outputs.js";
import { serializeSafetensors, type TensorToWrite } from "../io/safetensors-write.js";
import { pyFloat, pyJsonDumps, type PyJson } from "./py-json.js";

export interface HfTensor {
  shape: number[];
  data: Float32Array;
}

export interface HfCheckpointOptions {
  /** Element type of model.safetensors; F32 by default. */
  dtype?: "F32" | "F16" | "BF16";
  atomic?: AtomicOptions;
  /** Writes more files into the folder before it replaces the old one (the model's tokenizer files). */
  also?: (tmpDir: string) => Promise<void>;
}

/** Names that are tied copies of another tensor: `lm_head.weight` when the config ties embeddings. */
export function tiedDuplicates(tensors: ReadonlyMap<string, HfTensor>, config: Record<string, unknown>): string[] {
  if (config["tie_word_embeddings"] === false) return [];
  const head = tensors.get("lm_head.weight");
  if (!head) return [];
  for (const [name, t] of tensors) {
    if (name !== "lm_head.weight" && (t.data === head.data || equal(t, head))) return ["lm_head.weight"];
  }
  return [];
}

/** The folder's two files, without writing anything (for a folder that is part of a larger one). */
export function hfCheckpointFiles(tensors: ReadonlyMap<string, HfTensor>, config: Record<string, unknown>, dtype: HfCheckpointOptions["dtype"] = "F32"): { config: string; weights: Uint8Array[] } {
  const drop = new Set(tiedDuplicates(tensors, config));
  const list: TensorToWrite[] = [];
  for (const [name, t] of tensors) {
    if (drop.has(name)) continue;
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) throw new Error(`${name}: ${t.data.length} elements for shape [${t.shape.join(", ")}]`);
    list.push({ name, dtype, shape: t.shape, data: t.data });
  }
  return { config: `${pyJsonDumps(toPy(config))}\n`, weights: serializeSafetensors(list, { format: "pt" }) };
}

export async function writeHfCheckpoint(dir: string, tensors: ReadonlyMap<string, HfTensor>, config: Record<string, unknown>, opts: HfCheckpointOptions = {}): Promise<void> {
  const files = hfCheckpointFiles(tensors, config, opts.dtype);
  await replaceDirAtomic(
    dir,
    async (tmp) => {
      await writeFileAtomic(join(tmp, "config.json"), files.config);
      await writeFileAtomic(join(tmp, "model.safetensors"), files.weights);
      await opts.also?.(tmp);
      // Marks the folder as pefc's, so a later write may replace it and nothing else (io/outputs.ts).
      await writeOwnerMarker(tmp, "merged");
    },
    opts.atomic,
  );
}

/** Attaches the checkpoint shapes the profile knows to flat weights (unknown names are an error). */
export function withShapes(weights: ReadonlyMap<string, Float32Array>, profile: ModelProfile): Map<string, HfTensor> {
  const shapes = new Map<string, number[]>();
  for (const m of profile.modules) for (const p of m.params) shapes.set(p.name, p.shape);
  const out = new Map<string, HfTensor>();
  for (const [name, data] of weights) {
    const shape = shapes.get(name);
    if (!shape) throw new Error(`${profile.name} has no parameter ${name}`);
    out.set(name, { shape, data });
  }
  return out;
}

function equal(a: HfTensor, b: HfTensor): boolean {
  if (a.data.length !== b.data.length || a.shape.join() !== b.shape.join()) return false;
  for (let i = 0; i < a.data.length; i++) if (a.data[i] !== b.data[i]) return false;
  return true;
}

function toPy(v: unknown): PyJson {
  if (v === null || v === undefined) return null;
  if (typeof v === "number") return Number.isInteger(v) ? v : pyFloat(v);
  if (typeof v === "string" || typeof v === "boolean") return v;
  if (Array.isArray(v)) return v.map(toPy);
  if (typeof v === "object") return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, toPy(x)]));
  throw new Error(`config.json cannot hold a ${typeof v}`);
}
