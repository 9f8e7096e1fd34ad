// The tokenizer of pefc's built-in models: one token per UTF-8 byte, so any text (Chinese
// included) round-trips without a vocabulary file. Ids: 0 pad, 1 bos, 2 eos, 3 + byte.

import type { EncodeOptions, Tokenizer } from "./types.js";

const OFFSET = 3;

export class ByteTokenizer implements Tokenizer {
  readonly padId = 0;
  readonly bosId = 1;
  readonly eosId = 2;
  readonly vocabSize = OFFSET + 256;

  encode(text: string, opts: EncodeOptions = {}): number[] {
    const bytes = Buffer.from(text, "utf8");
    const ids = opts.addSpecial === false ? [] : [this.bosId];
    for (const b of bytes) ids.push(b + OFFSET);
    return ids;
  }

  decode(ids: number[]): string {
    const bytes: number[] = [];
    for (const id of ids) if (id >= OFFSET && id < this.vocabSize) bytes.push(id - OFFSET);
    // Lenient: a sequence cut mid-character decodes to U+FFFD instead of failing.
    return new TextDecoder("utf-8", { fatal: false }).decode(Uint8Array.from(bytes));
  }
}
