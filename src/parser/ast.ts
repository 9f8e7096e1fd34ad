/**
 * The typed AST of a .peft file. Every node carries the span of the source text it came from, so
 * every later phase (checker, selector resolution, data scanning) can point at the exact place.
 * The AST keeps what was written; defaults and meaning are applied by src/check.
 */

/** 1-based line and column of the first character, 0-based offsets; `end` is exclusive. */
export interface Span {
  line: number;
  column: number;
  endLine: number;
  endColumn: number;
  start: number;
  end: number;
}

export type Unit = "tokens" | "steps" | "epochs" | "percent";

export type Value =
  | { kind: "number"; value: number; text: string; unit?: Unit; span: Span }
  | { kind: "string"; value: string; span: Span }
  | { kind: "bool"; value: boolean; span: Span }
  /** A bare word: `ask`, `adamw`, `f16`, `cosine`. */
  | { kind: "name"; value: string; span: Span }
  | { kind: "role"; value: string; span: Span }
  | { kind: "tuple"; items: Value[]; span: Span };

/** `key = value` inside a block, or `key=value` inline after a method name. */
export interface Assign {
  key: string;
  keySpan: Span;
  value: Value;
  span: Span;
}

export type SelectorAtom =
  /** A plain name, matched as a segment-aligned suffix of the module path (`query_key_value`). */
  | { kind: "name"; text: string; span: Span }
  /** A dotted path, possibly with `*` (within a segment) and `**` (any segments) wildcards. */
  | { kind: "path"; text: string; span: Span }
  /** A quoted glob, for names a bare path cannot spell. Same rules as `path`. */
  | { kind: "glob"; text: string; span: Span }
  /** `/.../` matched against the whole module path; flags may be `i`. */
  | { kind: "regex"; source: string; flags: string; span: Span }
  /** `@q`, `@ffn_out`, `@linear`: resolved by the model profile. `name` has no `@`. */
  | { kind: "role"; name: string; span: Span }
  /** `$attn`: a named selector from a `select` statement. `name` has no `$`. */
  | { kind: "ref"; name: string; span: Span };

/** One element of `layers[...]`: a single index or a Python slice (half-open, negatives from the end). */
export type LayerSlice =
  | { kind: "index"; index: number; span: Span }
  | { kind: "slice"; start?: number; stop?: number; step?: number; span: Span };

export interface SelectorTerm {
  atom?: SelectorAtom;
  /** Present when the term carries `layers[...]` (alone or after an atom). */
  layers?: LayerSlice[];
  span: Span;
}

/** `a, b in layers[2:] except c`: the union of `terms` minus the union of `except`. */
export interface Selector {
  terms: SelectorTerm[];
  except: SelectorTerm[];
  span: Span;
}

export type MethodName =
  | "lora"
  | "adalora"
  | "ia3"
  | "bitfit"
  | "adapter"
  | "prefix"
  | "p_tuning"
  | "p_tuning_v2"
  | "prompt_tuning";

export type AdapterVariant = "houlsby" | "pfeiffer" | "parallel";

export type HybridName = "mam" | "unipelt" | "combine";

export interface Override {
  selector: Selector;
  items: Assign[];
  span: Span;
}

export interface MethodStmt {
  kind: "method";
  method: MethodName;
  variant?: AdapterVariant;
  variantSpan?: Span;
  headSpan: Span;
  args: Assign[];
  target?: Selector;
  /** Items of the `{ ... }` block, after the inline args. */
  items: Assign[];
  overrides: Override[];
  span: Span;
}

export interface HybridStmt {
  kind: "hybrid";
  hybrid: HybridName;
  headSpan: Span;
  args: Assign[];
  target?: Selector;
  items: Assign[];
  members: MethodStmt[];
  span: Span;
}

export interface HeaderStmt {
  kind: "header";
  version: string;
  versionSpan: Span;
  span: Span;
}

export interface ModelStmt {
  kind: "model";
  source: string;
  sourceSpan: Span;
  items: Assign[];
  span: Span;
}

export interface SelectStmt {
  kind: "select";
  name: string;
  nameSpan: Span;
  selector: Selector;
  span: Span;
}

export interface DataStmt {
  kind: "data";
  split: "train" | "eval";
  splitSpan: Span;
  file?: string;
  fileSpan?: Span;
  items: Assign[];
  span: Span;
}

export interface FreezeStmt {
  kind: "freeze";
  action: "freeze" | "unfreeze";
  /** `base` and `all` are words; anything else is a selector. */
  target: { kind: "base"; span: Span } | { kind: "all"; span: Span } | { kind: "selector"; selector: Selector };
  span: Span;
}

export interface InitStmt {
  kind: "init";
  from: string;
  fromSpan: Span;
  span: Span;
}

export interface TrainStmt {
  kind: "train";
  items: Assign[];
  span: Span;
}

/** `every epoch`, `every 2 epochs`, `every 500 steps`. */
export interface Period {
  count: number;
  unit: "steps" | "epochs";
  span: Span;
}

export interface SaveStmt {
  kind: "save";
  every?: Period;
  to?: string;
  toSpan?: Span;
  keep?: number;
  keepSpan?: Span;
  span: Span;
}

export interface ExportStmt {
  kind: "export";
  what: "adapter" | "merged";
  to: string;
  toSpan: Span;
  span: Span;
}

export type Statement =
  | HeaderStmt
  | ModelStmt
  | SelectStmt
  | DataStmt
  | FreezeStmt
  | MethodStmt
  | HybridStmt
  | InitStmt
  | TrainStmt
  | SaveStmt
  | ExportStmt;

export interface PeftFile {
  file: string;
  statements: Statement[];
  span: Span;
}
