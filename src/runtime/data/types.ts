// Shapes shared by the readers, the preprocessing and the batcher. A record remembers where it
// came from so that every later message can say file:line.

/** One training example: ids and per-position targets, HF convention (labels aligned with inputs, -100 = ignored). */
export interface Example {
  inputIds: Int32Array;
  labels: Int32Array;
  source: { file: string; line: number };
}

/** A record as read from a file: its fields, or why it could not be read. */
export type SourceRecord =
  | { ok: true; fields: Record<string, unknown>; line: number; index: number }
  | { ok: false; message: string; line: number; index: number; column?: number };

export interface DataStats {
  /** The data file as the spec names it. */
  file: string;
  /** Records found in the file, bad ones included. */
  records: number;
  /** Examples produced. */
  examples: number;
  /** Bad records skipped under `on_error = skip`. */
  skipped: number;
  /** The first few skip reasons, `file:line: message`, for the log. */
  skipReasons: string[];
  /** Records dropped because the mapped prompt or response is empty or null, as the ChatGLM2 recipe drops them. */
  empty: number;
  truncatedPrompts: number;
  truncatedResponses: number;
  /** Pre-tokenized records cut to the length budget. */
  truncatedSequences: number;
  /** Shares of `examples` (0 when there are none). */
  truncatedPromptShare: number;
  truncatedResponseShare: number;
  /** Sum of example lengths (input ids, specials included). */
  tokens: number;
  /** Sum of labels that are not -100. */
  labelTokens: number;
  longest: number;
}

export const IGNORE_INDEX = -100;
