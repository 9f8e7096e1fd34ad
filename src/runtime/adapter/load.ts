/**
 * Reads an adapter folder for `init from`: a folder written by saveAdapter or by PEFT's
 * save_pretrained, its tensors in adapter_model.safetensors or (PEFT with safe_serialization=False)
 * adapter_model.bin, read through the same checkpoint readers (weights-file.ts). The spec decides what the folder must hold (layout.ts, the same decision
 * saving makes): the peft_type must be the spec's method, every tensor the spec expects must be
 * there with the graph's shape, and no tensor may be left over (a leftover means the adapter
 * adapted modules the spec does not target). F16, BF16 and F64 tensors are widened to f32.
 * Every refusal is a UserError naming the file and the tensor, both shapes, and what to change.
 *
 * Prompt-learning folders hold only prompt_embeddings, the encoder's output (PEFT does not save
 * the encoder). So a projected prefix cannot continue from a folder in PEFT's layout: the spec must
 * say projection = false, and the table then starts from the saved prefixes (same forward). Likewise
 * a P_TUNING folder continues as `prompt_tuning` (the table is what P-tuning feeds the model), not
 * as `p_tuning`. AdaLoRA folders saved with a rank pattern hold pruned tensors; they are put back at
 * init_r with zeros in the masked rows and columns (E is zero there, so the function is the same;
 * PEFT rebuilds them the same way). Parameters no file holds (AdaLoRA's ranknum) keep their init.
 */
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Spec } from "../../check/spec.js";
import type { Graph } from "../../ir/index.js";
import type { ModelProfile } from "../../models/types.js";
import { UserError } from "../io/errors.js";
import { isFloat, type TensorInfo } from "../io/safetensors.js";
import { adapterLayout, moduleOf, type AdapterLayout, type TensorEntry } from "./layout.js";
import { CONFIG_FILE } from "./save.js";
import { openAdapterWeights } from "./weights-file.js";

export interface LoadAdapterOptions {
  spec: Spec;
  graph: Graph;
  profile: ModelProfile;
}

const WORD: Record<string, string> = {
  LORA: "lora",
  ADALORA: "adalora",
  IA3: "ia3",
  PREFIX_TUNING: "prefix tuning (prefix or p_tuning_v2)",
  P_TUNING: "p_tuning",
  PROMPT_TUNING: "prompt_tuning",
  PEFC: "pefc's own layout (hybrids, adapters, bitfit, several methods...)",
};

/** Graph parameter name → value, for every parameter the folder holds. */
export async function loadAdapter(dir: string, o: LoadAdapterOptions): Promise<Map<string, Float32Array>> {
  const configPath = join(dir, CONFIG_FILE);
  const config = await readConfig(dir, configPath);
  const layout = adapterLayout(o.spec, o.graph, o.profile);
  const fileType = config["peft_type"];
  if (typeof fileType !== "string") throw new UserError(`${configPath}: no "peft_type"; not an adapter_config.json written by PEFT or pefc`, { file: configPath });
  checkType(configPath, fileType, layout, o.spec);
  const ckpt = await openAdapterWeights(dir);
  const weights = ckpt.files[0]!;
  const masks = layout.peftType === "ADALORA" ? adaloraMasks(configPath, config, o.spec, layout) : undefined;
  const out = new Map<string, Float32Array>();
  for (const e of layout.entries) {
    const t = ckpt.tensors.get(e.key);
    const param = e.param ?? e.key;
    if (!t) {
      throw new UserError(
        `${weights}: no tensor '${e.key}', which the spec's ${param} [${e.shape.join(", ")}] loads from; the adapter was saved for other target modules or another method (init from needs the spec that trained it)`,
        { file: weights, tensor: e.key },
      );
    }
    if (!isFloat(t.dtype)) throw new UserError(`${weights}: tensor '${e.key}' has dtype ${t.dtype}; adapter tensors are floating point`, { file: weights, tensor: e.key });
    const mask = masks && e.param ? maskOf(masks, e.param) : undefined;
    const want = mask ? prunedShape(e, mask) : e.shape;
    if (!sameShape(t.shape, want)) {
      throw new UserError(
        `${weights}: tensor '${e.key}' has shape [${t.shape.join(", ")}] but the spec's ${param} needs [${want.join(", ")}]; ${shapeHint(e, layout, o.spec)}`,
        { file: weights, tensor: e.key },
      );
    }
    const data = await ckpt.readF32(e.key);
    out.set(param, mask ? unprune(e, data, mask) : data);
  }
  const expected = new Set(layout.entries.map((e) => e.key));
  const extra = [...ckpt.tensors.values()].filter((t: TensorInfo) => !expected.has(t.name));
  if (extra.length > 0) {
    const t = extra[0]!;
    throw new UserError(
      `${weights}: tensor '${t.name}' [${t.shape.join(", ")}] has no place in the spec's graph${extra.length > 1 ? ` (and ${extra.length - 1} more)` : ""}; the adapter adapts modules the spec does not target: make the spec's targets match it`,
      { file: weights, tensor: t.name },
    );
  }
  return out;
}

async function readConfig(dir: string, path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") {
      const isDir = await stat(dir).then((s) => s.isDirectory(), () => false);
      throw new UserError(
        isDir ? `${dir}: not an adapter folder: no ${CONFIG_FILE} (init from reads a folder saved by pefc or by PEFT's save_pretrained)` : `${dir}: no such adapter folder`,
        { file: isDir ? path : dir },
      );
    }
    throw new UserError(`${path}: cannot read: ${(e as Error).message}`, { file: path });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new UserError(`${path}: not valid JSON (${(e as Error).message})`, { file: path });
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new UserError(`${path}: expected a JSON object`, { file: path });
  return parsed as Record<string, unknown>;
}

function checkType(path: string, fileType: string, layout: AdapterLayout, spec: Spec): void {
  const want = layout.peftType;
  const m = layout.method !== undefined ? spec.methods[layout.method] : undefined;
  if (fileType === "P_TUNING" && want === "PROMPT_TUNING") return;
  if (fileType === want) {
    if (want === "P_TUNING") {
      throw new UserError(
        `${path}: a P_TUNING folder holds the prompt encoder's output only, not its MLP, so p_tuning cannot continue from it; write \`prompt_tuning tokens=${m && "tokens" in m.options ? m.options.tokens : "N"}\` to train that table directly`,
        { file: path },
      );
    }
    if (want === "PREFIX_TUNING" && layout.entries[0]?.computed) {
      throw new UserError(
        `${path}: a PREFIX_TUNING folder holds the prefixes (prompt_embeddings), not the projection MLP that made them; continue with \`projection = false\` so the prefixes train directly`,
        { file: path },
      );
    }
    return;
  }
  const known = WORD[fileType];
  const spec_ = WORD[want] ?? want;
  throw new UserError(
    `${path}: the adapter is ${known ? `${known} (peft_type ${fileType})` : `of peft_type ${fileType}, which pefc does not know`} but the spec trains ${spec_}; init from needs an adapter of the spec's own method`,
    { file: path },
  );
}

function adaloraMasks(path: string, config: Record<string, unknown>, spec: Spec, layout: AdapterLayout): Map<string, boolean[]> | undefined {
  const m = spec.methods[layout.method!]!;
  if (m.method !== "adalora") return undefined;
  const initR = config["init_r"];
  if (initR !== undefined && initR !== m.options.init_r) {
    throw new UserError(`${path}: the adapter was built with init_r = ${String(initR)} but the spec has init_r = ${m.options.init_r}; set init_r = ${String(initR)}`, { file: path });
  }
  const rp = config["rank_pattern"];
  if (rp === null || rp === undefined) return undefined;
  if (typeof rp !== "object" || Array.isArray(rp)) throw new UserError(`${path}: "rank_pattern" must be an object of boolean lists`, { file: path });
  const out = new Map<string, boolean[]>();
  for (const [k, v] of Object.entries(rp as Record<string, unknown>)) {
    if (!Array.isArray(v) || !v.every((x) => typeof x === "boolean") || v.length !== m.options.init_r) {
      throw new UserError(`${path}: rank_pattern entry '${k}' must be ${m.options.init_r} booleans (one per initial rank)`, { file: path });
    }
    out.set(k.endsWith(".lora_E") ? k.slice(0, -".lora_E".length) : k, v as boolean[]);
  }
  return out;
}

function maskOf(masks: Map<string, boolean[]>, param: string): boolean[] | undefined {
  const mod = moduleOf(param, ".lora_A") ?? moduleOf(param, ".lora_E") ?? moduleOf(param, ".lora_B");
  return mod === undefined ? undefined : masks.get(mod);
}

function prunedShape(e: TensorEntry, mask: readonly boolean[]): number[] {
  const k = mask.filter(Boolean).length;
  return e.param!.endsWith(".lora_B") ? [e.shape[0]!, k] : [k, e.shape[1]!];
}

/** Back to the full init_r shape, zeros in the masked rows (A, E) or columns (B). */
function unprune(e: TensorEntry, data: Float32Array, mask: readonly boolean[]): Float32Array {
  const kept = mask.flatMap((k, i) => (k ? [i] : []));
  const [d0, d1] = e.shape as [number, number];
  const out = new Float32Array(d0 * d1);
  if (e.param!.endsWith(".lora_B")) {
    for (let row = 0; row < d0; row++) kept.forEach((c, j) => (out[row * d1 + c] = data[row * kept.length + j]!));
  } else {
    kept.forEach((row, j) => out.set(data.subarray(j * d1, (j + 1) * d1), row * d1));
  }
  return out;
}

function shapeHint(e: TensorEntry, layout: AdapterLayout, spec: Spec): string {
  const m = layout.method !== undefined ? spec.methods[layout.method] : undefined;
  const key = e.key;
  if (m?.method === "lora" && /lora_[AB]\.weight$/.test(key)) return "the adapter was trained with another rank r (or on a module of another size); set r (or an override) to the adapter's rank";
  if (m?.method === "adalora") return "the adapter was trained with another init_r or on a module of another size";
  if (m?.method === "ia3") return "the file scales this module on the other side: list it in (or drop it from) `feedforward`";
  if (key === "prompt_embeddings") return "set tokens to the adapter's number of virtual tokens (and use the model it was trained on)";
  return "make the spec match the adapter it continues from";
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

