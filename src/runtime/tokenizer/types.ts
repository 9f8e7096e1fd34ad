// What the trainer, data loader and generator need from a tokenizer, whatever its kind.

export interface EncodeOptions {
  /** Add the tokenizer's special tokens (e.g. BOS); default true. */
  addSpecial?: boolean;
}

export interface Tokenizer {
  encode(text: string, opts?: EncodeOptions): number[];
  /** Text of `ids`, special tokens dropped. */
  decode(ids: number[]): string;
  bosId?: number;
  eosId?: number;
  padId?: number;
  /** One more than the largest id the tokenizer can produce. */
  vocabSize: number;
}
