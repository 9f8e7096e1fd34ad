// Prompt/response pairs to ids and labels, after the ChatGLM2 recipe (ptuning/main.py,
// preprocess_function_train):
//   a = encode(prompt text with the tokenizer's special tokens), cut to max_source (specials kept,
//       the text cut, as Hugging Face truncation does)
//   b = encode(response, no special tokens), cut to max_target (its end is cut)
//   input_ids = a + b + [eos];  labels = [-100] * len(a) + b + [eos]   (loss = response)
//                                labels = input_ids                       (loss = all)
// ChatGLM2's build_inputs_with_special_tokens puts [gMASK]<sop> before the prompt; for our
// tokenizers the prompt gets whatever the tokenizer itself adds (`addSpecial`): the byte
// tokenizer's and Llama's BOS, nothing for GPT-2. The recipe also turns any response id equal to
// the pad id into -100; that is not reproduced (a real pad id never occurs inside text).
//
// With one budget (max_length) the whole sequence, specials and eos included, fits in it: the
// response is cut first; only when the prompt alone leaves no room is the prompt cut too and the
// response dropped (eos still trained). The truncation side applies to the prompt: `left` cuts its
// start (the end of a question is usually what matters), `right` its end.

import type { DataSpec } from "../../check/spec.js";
import type { Tokenizer } from "../tokenizer/index.js";
import { IGNORE_INDEX } from "./types.js";

export interface Specials {
  prefix: number[];
  suffix: number[];
}

/** The ids the tokenizer adds around a text when asked for special tokens, found by a probe. */
export function specialsOf(tokenizer: Tokenizer, addSpecial: boolean): Specials {
  if (!addSpecial) return { prefix: [], suffix: [] };
  const probe = "a";
  const full = tokenizer.encode(probe, { addSpecial: true });
  const plain = tokenizer.encode(probe, { addSpecial: false });
  for (let k = 0; k + plain.length <= full.length; k++) {
    if (plain.every((id, i) => full[k + i] === id)) return { prefix: full.slice(0, k), suffix: full.slice(k + plain.length) };
  }
  return { prefix: [], suffix: [] };
}

export interface Encoded {
  inputIds: Int32Array;
  labels: Int32Array;
  promptLength: number;
  truncatedPrompt: boolean;
  truncatedResponse: boolean;
}

export interface EncodeContext {
  tokenizer: Tokenizer;
  specials: Specials;
  eosId: number;
  lengths: DataSpec["lengths"];
  truncation: DataSpec["truncation"];
  loss: DataSpec["loss"];
}

export function encodeExchange(promptText: string, responseText: string, ctx: EncodeContext): Encoded {
  const { prefix, suffix } = ctx.specials;
  const special = prefix.length + suffix.length;
  let a = ctx.tokenizer.encode(promptText, { addSpecial: false });
  let b = responseText === "" ? [] : ctx.tokenizer.encode(responseText, { addSpecial: false });
  let aRoom: number;
  let bRoom: number;
  if ("maxLength" in ctx.lengths) {
    const room = Math.max(0, ctx.lengths.maxLength - 1 - special);
    aRoom = Math.min(a.length, room);
    bRoom = room - aRoom;
  } else {
    aRoom = Math.max(0, ctx.lengths.maxSource - special);
    bRoom = ctx.lengths.maxTarget;
  }
  const truncatedPrompt = a.length > aRoom;
  const truncatedResponse = b.length > bRoom;
  if (truncatedPrompt) a = ctx.truncation === "left" ? a.slice(a.length - aRoom) : a.slice(0, aRoom);
  if (truncatedResponse) b = b.slice(0, bRoom);
  const promptLength = prefix.length + a.length + suffix.length;
  const n = promptLength + b.length + 1;
  const inputIds = new Int32Array(n);
  inputIds.set(prefix, 0);
  inputIds.set(a, prefix.length);
  inputIds.set(suffix, prefix.length + a.length);
  inputIds.set(b, promptLength);
  inputIds[n - 1] = ctx.eosId;
  const labels = Int32Array.from(inputIds);
  if (ctx.loss === "response") labels.fill(IGNORE_INDEX, 0, promptLength);
  return { inputIds, labels, promptLength, truncatedPrompt, truncatedResponse };
}
