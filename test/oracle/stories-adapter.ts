/**
 * Fixed inputs for comparing pefc's LoRA training on stories260K with the PyTorch oracle: a
 * non-zero LoRA adapter in PEFT's layout (a zero B would hide every error in A's gradient and in
 * the LoRA forward), and pre-tokenized, padded micro-batches. Both are deterministic, so the oracle
 * and pefc see the same numbers.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Prng } from "../../src/models/prng.js";
import { writeSafetensors, type TensorToWrite } from "../../src/runtime/io/index.js";
import { loadTokenizer } from "../../src/runtime/tokenizer/index.js";
import type { OracleBatch } from "./torch.js";

export const STORIES_DIR = fileURLToPath(new URL("../../../shared/models/stories260K/hf", import.meta.url));

export const STORIES_LORA = { r: 4, alpha: 8, targets: ["q_proj", "v_proj"] as const, layers: 5 };

/** PEFT's key of a LoRA matrix, e.g. base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight. */
export function peftKey(layer: number, leaf: string, ab: "A" | "B"): string {
  return `base_model.model.model.layers.${layer}.self_attn.${leaf}.lora_${ab}.weight`;
}

export interface StoriesAdapter {
  dir: string;
  /** PEFT key → values as written (F32). */
  tensors: Map<string, Float32Array>;
  shapes: Map<string, number[]>;
}

export interface AdapterOptions {
  /** Folder to write into (created if missing); default a fresh temp folder, which the caller removes. */
  dir?: string;
  seed?: number;
  /** Standard deviation of A's and B's entries; default 0.05. */
  std?: number;
  /** Write B = 0 (PEFT's initialisation): the adapted model is then the base model. */
  zeroB?: boolean;
}

/**
 * Writes adapter_config.json and adapter_model.safetensors: r=4, alpha=8 LoRA on q_proj and v_proj
 * of every layer. Entries are Prng(seed).normal(0, std) drawn layer by layer, q_proj before v_proj,
 * A (all of it, row-major) before B.
 */
export async function writeStoriesAdapter(o: AdapterOptions = {}): Promise<StoriesAdapter> {
  const dir = o.dir ?? mkdtempSync(join(tmpdir(), "pefc-stories-lora-"));
  mkdirSync(dir, { recursive: true });
  const config = JSON.parse(readFileSync(join(STORIES_DIR, "config.json"), "utf8")) as Record<string, number>;
  const headDim = config.head_dim ?? config.hidden_size! / config.num_attention_heads!;
  const outOf: Record<string, number> = {
    q_proj: config.num_attention_heads! * headDim,
    v_proj: (config.num_key_value_heads ?? config.num_attention_heads!) * headDim,
  };
  const { r, alpha, targets, layers } = STORIES_LORA;
  const rng = new Prng(o.seed ?? 1234);
  const std = o.std ?? 0.05;
  const tensors = new Map<string, Float32Array>();
  const shapes = new Map<string, number[]>();
  const list: TensorToWrite[] = [];
  for (let l = 0; l < layers; l++) {
    for (const leaf of targets) {
      for (const [ab, shape] of [["A", [r, config.hidden_size!]], ["B", [outOf[leaf]!, r]]] as const) {
        const v = new Float32Array(shape[0] * shape[1]);
        for (let i = 0; i < v.length; i++) v[i] = rng.normal(0, std);
        if (ab === "B" && o.zeroB) v.fill(0);
        const name = peftKey(l, leaf, ab);
        tensors.set(name, v);
        shapes.set(name, [...shape]);
        list.push({ name, dtype: "F32", shape, data: v });
      }
    }
  }
  const adapterConfig = {
    alpha_pattern: {},
    base_model_name_or_path: STORIES_DIR,
    bias: "none",
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    lora_alpha: alpha,
    lora_dropout: 0.0,
    modules_to_save: null,
    peft_type: "LORA",
    r,
    rank_pattern: {},
    target_modules: [...targets],
    task_type: "CAUSAL_LM",
    use_dora: false,
    use_rslora: false,
  };
  writeFileSync(join(dir, "adapter_config.json"), JSON.stringify(adapterConfig, null, 2));
  await writeSafetensors(join(dir, "adapter_model.safetensors"), list, { format: "pt" });
  return { dir, tensors, shapes };
}

export const STORIES_SENTENCES: readonly string[] = [
  "Once upon a time, there was a little girl named Lily.",
  "She liked to play in the park with her red ball.",
  "One day, a big dog came to the park.",
  "Tom was sad because his toy was broken.",
  "The sun was warm and the birds sang.",
  "Mom gave him a hug and he felt happy again.",
  "They went home and ate a yummy cake.",
  "The cat jumped on the bed.",
];

export const PAD_ID = 0;

/**
 * The sentences tokenized with BOS, labels = input_ids, every row right-padded with PAD_ID (label
 * -100) to the longest row of all (or `padTo`), `rowsPerBatch` rows per micro-batch in order.
 */
export async function storiesBatches(opts: { rowsPerBatch?: number; padTo?: number } = {}): Promise<OracleBatch[]> {
  const tok = await loadTokenizer(STORIES_DIR);
  const rows = STORIES_SENTENCES.map((s) => tok.encode(s));
  for (const row of rows) if (row[0] !== tok.bosId) throw new Error("stories tokenizer did not add BOS");
  const T = opts.padTo ?? Math.max(...rows.map((r) => r.length));
  if (rows.some((r) => r.length > T)) throw new Error(`a row is longer than padTo ${T}`);
  const per = opts.rowsPerBatch ?? 2;
  const batches: OracleBatch[] = [];
  for (let i = 0; i < rows.length; i += per) {
    const chunk = rows.slice(i, i + per);
    batches.push({
      input_ids: chunk.map((r) => [...r, ...new Array<number>(T - r.length).fill(PAD_ID)]),
      labels: chunk.map((r) => [...r, ...new Array<number>(T - r.length).fill(-100)]),
    });
  }
  return batches;
}
