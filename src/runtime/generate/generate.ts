/** Text generation on a loaded model (and adapter): the prompt's tokens, then one token at a time. */
import { UserError } from "../io/errors.js";
import type { Tokenizer } from "../tokenizer/index.js";
import type { Decoder } from "./decoder.js";
import { sampleToken, type SampleOptions } from "./sample.js";

export interface GenerateOptions extends SampleOptions {
  maxNewTokens: number;
  /** Called with each new piece of text as it is decoded. */
  onText?: (text: string) => void;
}

export async function generate(decoder: Decoder, tok: Tokenizer, prompt: string, o: GenerateOptions): Promise<{ ids: number[]; text: string }> {
  const ids = tok.encode(prompt);
  const start = ids.length;
  let shown = "";
  for (let step = 0; step < o.maxNewTokens; step++) {
    // A decoder with a limit (a KV cache) stops the text where the limit is reached.
    if (decoder.maxTokens !== undefined && ids.length > decoder.maxTokens) {
      if (step === 0) throw new UserError(`the prompt has ${ids.length} tokens; this decoder holds at most ${decoder.maxTokens}`);
      break;
    }
    const logits = await decoder.next(ids);
    const next = sampleToken(logits, step, o);
    if (next === tok.eosId) break;
    ids.push(next);
    const text = tok.decode(ids.slice(start));
    if (o.onText && text.length > shown.length && !text.endsWith("\ufffd")) {
      o.onText(text.slice(shown.length));
      shown = text;
    }
  }
  const text = tok.decode(ids.slice(start));
  if (o.onText && text.length > shown.length) o.onText(text.slice(shown.length));
  return { ids: ids.slice(start), text };
}
