/**
 * data_config.json: the data blocks of a spec as data_pipeline.py reads them. Paths are relative
 * to the bundle (the data files and tokenizer files are copied into it); the template is written
 * out as text, resolved as the session resolves it, so the Python side needs no template names.
 */
import { basename } from "node:path";
import type { DataSpec, Spec } from "../check/spec.js";
import { templateByName } from "../models/templates.js";
import type { ModelProfile } from "../models/types.js";
import { formatOf } from "../runtime/data/index.js";
import type { SentencePieceConvention } from "../runtime/tokenizer/index.js";

export type TokenizerRef =
  | { kind: "byte" }
  | { kind: "tokenizer.json"; folder: string }
  | { kind: "sentencepiece"; folder: string; convention: SentencePieceConvention };

/** Where each data file of the spec goes in the bundle: data/<name>, made unique. */
export function bundledDataFiles(spec: Spec): Map<string, string> {
  const out = new Map<string, string>();
  const taken = new Set<string>();
  for (const d of [spec.data.train, spec.data.eval]) {
    if (!d?.file || out.has(d.file)) continue;
    let name = basename(d.file);
    for (let i = 2; taken.has(name); i++) name = `${i}-${basename(d.file)}`;
    taken.add(name);
    out.set(d.file, `data/${name}`);
  }
  return out;
}

export function templateText(d: DataSpec, profile: ModelProfile): string {
  if ("text" in d.template) return d.template.text;
  if (d.template.name === "model") return profile.chatTemplate;
  const t = templateByName(d.template.name);
  if (t === undefined) throw new Error(`unknown template ${d.template.name} passed the checker`);
  return t;
}

function block(d: DataSpec, profile: ModelProfile, files: Map<string, string>): Record<string, unknown> {
  const lengths = "maxLength" in d.lengths ? { max_length: d.lengths.maxLength } : { max_source: d.lengths.maxSource, max_target: d.lengths.maxTarget };
  return {
    file: files.get(d.file!)!,
    format: formatOf(d.file!, d.format),
    mode: d.mode,
    fields: { prompt: d.fields.prompt ?? null, response: d.fields.response ?? null, system: d.fields.system ?? null, history: d.fields.history ?? null },
    ...(d.mode === "text" ? { template: templateText(d, profile), add_special: true } : {}),
    lengths,
    truncation: d.truncation,
    loss: d.loss,
    shuffle: d.shuffle,
    seed: d.seed,
    on_error: d.onError,
  };
}

export function dataConfig(spec: Spec, profile: ModelProfile, tokenizer: TokenizerRef): Record<string, unknown> {
  const files = bundledDataFiles(spec);
  const train = spec.data.train;
  if (!train?.file) throw new Error("dataConfig: the spec has no train data file");
  const ev = spec.data.eval;
  const t = spec.train;
  return {
    tokenizer,
    vocab_size: profile.dims.vocabSize,
    train: block(train, profile, files),
    eval: ev?.holdout ? { holdout: ev.holdout, seed: ev.seed } : ev?.file ? block(ev, profile, files) : null,
    train_loop: { batch: t.batch, grad_accum: t.gradAccum, ...("steps" in t.length ? { steps: t.length.steps } : { epochs: t.length.epochs }) },
  };
}
