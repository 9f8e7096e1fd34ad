/**
 * Writes an adapter folder: adapter_config.json and adapter_model.safetensors (F32, metadata
 * {"format": "pt"}), swapped in as a whole so a crash leaves the previous folder or the new one.
 * layout.ts decides between PEFT's layout and pefc's own; the safetensors metadata also carries a
 * "pefc" entry (format version, language version, spec file, layout), which PEFT never reads.
 *
 * Two PEFT tensors are not parameters of the graph:
 * - prompt_embeddings of a projected prefix (or of P-tuning) is the encoder's output for ids
 *   0..P−1, computed here with the reference ops from the saved encoder weights, as PEFT's
 *   get_prompt_embedding_to_save does. The encoder itself is not saved, as in PEFT.
 * - AdaLoRA with a rank pattern is saved pruned, as PEFT's resize_state_dict_by_rank_pattern does:
 *   rows of lora_A and lora_E and columns of lora_B whose triplet was masked are dropped.
 */
import { basename, join } from "node:path";
import type { Spec } from "../../check/spec.js";
import type { Graph } from "../../ir/index.js";
import type { ModelProfile } from "../../models/types.js";
import { writeFileAtomic, replaceDirAtomic, type AtomicOptions } from "../io/atomic.js";
import { writeOwnerMarker } from "../io/outputs.js";
import { serializeSafetensors, type TensorToWrite } from "../io/safetensors-write.js";
import { prefixMlpForward, ptuningMlpForward } from "../reference/prompt-encoders.js";
import { adapterConfig, PEFC_FORMAT_VERSION } from "./config.js";
import { adapterLayout, moduleOf, type AdapterLayout, type TensorEntry } from "./layout.js";
import { pyJsonDumps } from "./py-json.js";

export const CONFIG_FILE = "adapter_config.json";
export const WEIGHTS_FILE = "adapter_model.safetensors";

export interface AdapterExtra {
  /** AdaLoRA: the rank allocator's keep-masks (true = kept), keyed by module path or `<path>.lora_E`. */
  rankPattern?: Record<string, boolean[]>;
  /** AdaLoRA: total optimizer steps, when the spec leaves total_step to the run. */
  totalStep?: number;
}

export interface SaveAdapterOptions {
  spec: Spec;
  graph: Graph;
  profile: ModelProfile;
  /** Graph parameter name → current value. */
  values: ReadonlyMap<string, Float32Array>;
  /** base_model_name_or_path: the model as the user named it (a hub id or a folder). */
  baseModel: string;
  extra?: AdapterExtra;
  atomic?: AtomicOptions;
  /** Writes more files into the folder before it replaces the old one (a trainer's resume state). */
  also?: (tmpDir: string) => Promise<void>;
}

export interface AdapterFiles {
  layout: AdapterLayout;
  /** adapter_config.json, as PEFT's json.dumps(indent=2, sort_keys=True) writes it. */
  config: string;
  tensors: TensorToWrite[];
  metadata: Record<string, string>;
}

/** The folder's contents, without writing anything. */
export function adapterFiles(o: SaveAdapterOptions): AdapterFiles {
  const layout = adapterLayout(o.spec, o.graph, o.profile);
  const config = pyJsonDumps(adapterConfig({ ...o, layout, ...o.extra }));
  const pattern = layout.peftType === "ADALORA" && o.extra?.rankPattern ? keepMasks(o.extra.rankPattern) : undefined;
  const tensors = layout.entries.map((e) => tensorFor(e, o, pattern));
  const metadata = {
    format: "pt",
    pefc: JSON.stringify({ format_version: PEFC_FORMAT_VERSION, language_version: o.spec.version, spec_file: basename(o.spec.file), layout: layout.peftType }),
  };
  return { layout, config, tensors, metadata };
}

export async function saveAdapter(dir: string, o: SaveAdapterOptions): Promise<AdapterLayout> {
  const files = adapterFiles(o);
  await replaceDirAtomic(
    dir,
    async (tmp) => {
      await writeFileAtomic(join(tmp, CONFIG_FILE), files.config);
      await writeFileAtomic(join(tmp, WEIGHTS_FILE), serializeSafetensors(files.tensors, files.metadata));
      await o.also?.(tmp);
      // Marks the folder as pefc's, so a later write may replace it and nothing else (io/outputs.ts).
      await writeOwnerMarker(tmp, "adapter");
    },
    o.atomic,
  );
  return files.layout;
}

function keepMasks(given: Record<string, boolean[]>): Map<string, boolean[]> {
  return new Map(Object.entries(given).map(([k, v]) => [k.endsWith(".lora_E") ? k.slice(0, -".lora_E".length) : k, v]));
}

function value(o: SaveAdapterOptions, name: string): Float32Array {
  const v = o.values.get(name);
  const p = o.graph.params.find((x) => x.name === name);
  if (!p) throw new Error(`no graph parameter ${name}`);
  if (!v) throw new Error(`no value for ${name}`);
  const n = p.shape.reduce((a, b) => a * b, 1);
  if (v.length !== n) throw new Error(`value of ${name} has ${v.length} elements, shape [${p.shape.join(", ")}] needs ${n}`);
  return v;
}

function tensorFor(e: TensorEntry, o: SaveAdapterOptions, pattern: Map<string, boolean[]> | undefined): TensorToWrite {
  if (e.computed) return { name: e.key, dtype: "F32", shape: e.shape, data: encoderOutput(e, o) };
  const data = value(o, e.param!);
  if (pattern) {
    const mod = moduleOf(e.param!, ".lora_A") ?? moduleOf(e.param!, ".lora_E") ?? moduleOf(e.param!, ".lora_B");
    const mask = mod !== undefined ? pattern.get(mod) : undefined;
    if (mask) return pruned(e, data, mask);
  }
  return { name: e.key, dtype: "F32", shape: e.shape, data };
}

/** Keeps rows (lora_A [r,in], lora_E [r,1]) or columns (lora_B [out,r]) of kept triplets. */
export function pruned(e: TensorEntry, data: Float32Array, mask: readonly boolean[]): TensorToWrite {
  const kept = mask.flatMap((k, i) => (k ? [i] : []));
  const isB = e.param!.endsWith(".lora_B");
  const [d0, d1] = e.shape as [number, number];
  if (isB) {
    const out = new Float32Array(d0 * kept.length);
    for (let row = 0; row < d0; row++) kept.forEach((c, j) => (out[row * kept.length + j] = data[row * d1 + c]!));
    return { name: e.key, dtype: "F32", shape: [d0, kept.length], data: out };
  }
  const out = new Float32Array(kept.length * d1);
  kept.forEach((row, j) => out.set(data.subarray(row * d1, (row + 1) * d1), j * d1));
  return { name: e.key, dtype: "F32", shape: [kept.length, d1], data: out };
}

function encoderOutput(e: TensorEntry, o: SaveAdapterOptions): Float32Array {
  const [P, O] = e.shape as [number, number];
  if (e.computed === "prefix_mlp") {
    const enc = "prefix_encoder";
    const emb = value(o, `${enc}.embedding.weight`);
    const w1 = value(o, `${enc}.transform.0.weight`);
    const h = w1.length / (emb.length / P);
    return prefixMlpForward(emb, { w1, b1: value(o, `${enc}.transform.0.bias`), w2: value(o, `${enc}.transform.2.weight`), b2: value(o, `${enc}.transform.2.bias`) }, { P, d: emb.length / P, h, O }).out;
  }
  const enc = "prompt_encoder";
  const emb = value(o, `${enc}.embedding.weight`);
  const b1 = value(o, `${enc}.mlp_head.0.bias`);
  return ptuningMlpForward(
    emb,
    {
      w1: value(o, `${enc}.mlp_head.0.weight`), b1,
      w2: value(o, `${enc}.mlp_head.2.weight`), b2: value(o, `${enc}.mlp_head.2.bias`),
      w3: value(o, `${enc}.mlp_head.4.weight`), b3: value(o, `${enc}.mlp_head.4.bias`),
    },
    { T: P, D: O, h: b1.length },
  ).out;
}
