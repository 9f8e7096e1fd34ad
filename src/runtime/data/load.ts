// The data loader's entry point: a data block of the spec plus a tokenizer and a resolved template
// become training examples and the statistics the run log prints.

import type { DataSpec } from "../../check/spec.js";
import type { Tokenizer } from "../tokenizer/index.js";
import { UserError } from "../io/errors.js";
import { encodeExchange, specialsOf, type EncodeContext } from "./encode.js";
import { recordError, type DataError } from "./errors.js";
import { historyField, idsField, missingField, optionalText, textField } from "./fields.js";
import { readRecords } from "./read-file.js";
import { parseTemplate, renderExchange, type Template } from "./template.js";
import type { DataStats, Example } from "./types.js";

export interface LoadOptions {
  /** Folder the spec's file path is relative to (the .peft file's folder). */
  baseDir: string;
  tokenizer: Tokenizer;
  /** The template text, already resolved from its name ("model" = the model profile's template). */
  template: string;
  /** The model's vocabulary size (the embedding rows), which bounds pre-tokenized ids. */
  vocabSize: number;
  /** Let the tokenizer add its special tokens (BOS...) before the prompt; default true, as the recipe does. */
  addSpecial?: boolean;
}

const KEEP_REASONS = 5;

type Outcome = { kind: "example"; example: Example; truncatedPrompt: boolean; truncatedResponse: boolean; truncatedSequence: boolean } | { kind: "empty" } | { kind: "bad"; error: DataError };

export async function loadDataset(spec: DataSpec, opts: LoadOptions): Promise<{ examples: Example[]; stats: DataStats }> {
  if (spec.file === undefined) throw new Error("loadDataset: this data block has no file (a held-out eval split comes from holdOut)");
  const file = spec.file;
  const records = await readRecords(opts.baseDir, file, spec.format);
  const toExample = spec.mode === "tokenized" ? tokenizedReader(spec, file, opts) : textReader(spec, file, opts);

  const stats: DataStats = {
    file, records: records.length, examples: 0, skipped: 0, skipReasons: [], empty: 0,
    truncatedPrompts: 0, truncatedResponses: 0, truncatedSequences: 0, truncatedPromptShare: 0, truncatedResponseShare: 0,
    tokens: 0, labelTokens: 0, longest: 0,
  };
  const examples: Example[] = [];
  let firstError: DataError | undefined;
  for (const r of records) {
    const out: Outcome = r.ok
      ? toExample(r.fields, r.line)
      : { kind: "bad", error: recordError(file, r.line, r.message, "fix the line, or set `on_error = skip` in the data block to skip and count bad records", r.column) };
    if (out.kind === "bad") {
      if (spec.onError === "fail") throw out.error;
      firstError ??= out.error;
      stats.skipped++;
      if (stats.skipReasons.length < KEEP_REASONS) stats.skipReasons.push(out.error.message);
      continue;
    }
    if (out.kind === "empty") {
      stats.empty++;
      continue;
    }
    const ex = out.example;
    examples.push(ex);
    if (out.truncatedPrompt) stats.truncatedPrompts++;
    if (out.truncatedResponse) stats.truncatedResponses++;
    if (out.truncatedSequence) stats.truncatedSequences++;
    stats.tokens += ex.inputIds.length;
    stats.longest = Math.max(stats.longest, ex.inputIds.length);
    for (const l of ex.labels) if (l !== -100) stats.labelTokens++;
  }
  // Skipping every record means the mapping is wrong, not the data: report the first reason.
  if (examples.length === 0 && firstError) throw firstError;
  stats.examples = examples.length;
  if (examples.length > 0) {
    stats.truncatedPromptShare = stats.truncatedPrompts / examples.length;
    stats.truncatedResponseShare = stats.truncatedResponses / examples.length;
  }
  return { examples, stats };
}

function textReader(spec: DataSpec, file: string, opts: LoadOptions): (fields: Record<string, unknown>, line: number) => Outcome {
  const promptName = spec.fields.prompt;
  if (promptName === undefined) throw new Error("loadDataset: text mode without a prompt field");
  const template: Template = parseTemplate(opts.template);
  const eosId = opts.tokenizer.eosId;
  if (eosId === undefined) throw new UserError("the tokenizer has no end-of-sequence token, which every training example ends with; set eos_token in tokenizer_config.json");
  const ctx: EncodeContext = {
    tokenizer: opts.tokenizer,
    specials: specialsOf(opts.tokenizer, opts.addSpecial !== false),
    eosId,
    lengths: spec.lengths,
    truncation: spec.truncation,
    loss: spec.loss,
  };
  const { response: responseName, system: systemName, history: historyName } = spec.fields;
  return (fields, line) => {
    const prompt = textField(file, line, fields, promptName, "the prompt");
    if (!prompt.ok) return { kind: "bad", error: prompt.error };
    let response = "";
    if (responseName !== undefined) {
      const r = textField(file, line, fields, responseName, "the response");
      if (!r.ok) return { kind: "bad", error: r.error };
      response = r.value;
    }
    let system = "";
    if (systemName !== undefined) {
      const s = optionalText(file, line, fields, systemName);
      if (!s.ok) return { kind: "bad", error: s.error };
      system = s.value;
    }
    let history: { prompt: string; response: string }[] = [];
    if (historyName !== undefined) {
      const h = historyField(file, line, fields, historyName);
      if (!h.ok) return { kind: "bad", error: h.error };
      history = h.value;
    }
    // The recipe keeps a record only when both its prompt and its response are non-empty.
    if (prompt.value === "" || (responseName !== undefined && response === "")) return { kind: "empty" };
    const text = renderExchange(template, { prompt: prompt.value, response }, history, system);
    const enc = encodeExchange(text.prompt, text.response, ctx);
    return {
      kind: "example",
      example: { inputIds: enc.inputIds, labels: enc.labels, source: { file, line } },
      truncatedPrompt: enc.truncatedPrompt,
      truncatedResponse: enc.truncatedResponse,
      truncatedSequence: false,
    };
  };
}

/**
 * Pre-tokenized records: `input_ids` and optional `labels` of the same length (ids or -100); without
 * labels every position is a target. Sequences longer than the budget (max_length, or
 * max_source + max_target + 1, the longest a text record can become) are cut on the truncation side.
 */
function tokenizedReader(spec: DataSpec, file: string, opts: LoadOptions): (fields: Record<string, unknown>, line: number) => Outcome {
  const limit = "maxLength" in spec.lengths ? spec.lengths.maxLength : spec.lengths.maxSource + spec.lengths.maxTarget + 1;
  return (fields, line) => {
    if (!Object.hasOwn(fields, "input_ids")) return { kind: "bad", error: missingField(file, line, "input_ids", "the prompt (for text records)", fields) };
    const ids = idsField(file, line, fields, "input_ids", opts.vocabSize, false);
    if (!ids.ok) return { kind: "bad", error: ids.error };
    if (ids.value.length === 0) return { kind: "bad", error: recordError(file, line, "input_ids is empty", "remove the record, or set `on_error = skip`") };
    let labels: Int32Array = Int32Array.from(ids.value);
    if (Object.hasOwn(fields, "labels") && fields.labels !== null) {
      const l = idsField(file, line, fields, "labels", opts.vocabSize, true);
      if (!l.ok) return { kind: "bad", error: l.error };
      if (l.value.length !== ids.value.length) {
        return { kind: "bad", error: recordError(file, line, `labels has ${l.value.length} entries but input_ids has ${ids.value.length}`, "give one label per input id (-100 where no loss)") };
      }
      labels = l.value;
    }
    let inputIds: Int32Array = ids.value;
    const cut = inputIds.length > limit;
    if (cut) {
      const [from, to] = spec.truncation === "left" ? [inputIds.length - limit, inputIds.length] : [0, limit];
      inputIds = inputIds.slice(from, to);
      labels = labels.slice(from, to);
    }
    return { kind: "example", example: { inputIds, labels, source: { file, line } }, truncatedPrompt: false, truncatedResponse: false, truncatedSequence: cut };
  };
}
