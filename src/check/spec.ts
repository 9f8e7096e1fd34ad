/**
 * The checked spec: what a .peft file means, with every default written out. Passes, the planner
 * and the runtime read this, never the AST. Spans stay attached where later phases report errors
 * (selectors, paths).
 */
import type { AdapterVariant, Selector, Span } from "../parser/ast.js";

export type PeriodSpec = { every: number; unit: "steps" | "epochs" };

export interface ModelSpec {
  /** As written: a folder path (relative to the .peft file) or `builtin:NAME`. */
  source: string;
  /** The path as the file writes it, when it names environment variables (`${CHATGLM2_6B}`); `source` is it expanded. */
  asWritten?: string;
  builtin?: string;
  seed: number;
  span: Span;
}

export interface DataSpec {
  split: "train" | "eval";
  file?: string;
  format?: "jsonl" | "json" | "csv";
  /** `text`: prompt/response fields through a template; `tokenized`: records carry input_ids (and labels). */
  mode: "text" | "tokenized";
  fields: { prompt?: string; response?: string; system?: string; history?: string };
  /** A template name (chatglm2, llama2, alpaca, plain, model) or a custom string. */
  template: { name: string } | { text: string };
  lengths: { maxSource: number; maxTarget: number } | { maxLength: number };
  truncation: "left" | "right";
  loss: "response" | "all";
  shuffle: boolean;
  seed: number;
  /** Eval only: hold out a share (0..1) or a count of the train records. */
  holdout?: { share: number } | { count: number };
  onError: "fail" | "skip";
  span: Span;
  fileSpan?: Span;
}

export interface LoraOptions { r: number; alpha: number; dropout: number; rslora: boolean; init: "kaiming" | "gaussian"; bias: "none" | "all" | "lora_only" }
export interface AdaloraOptions {
  r: number; alpha: number; dropout: number; init_r: number; tinit: number; tfinal: number; delta_t: number;
  beta1: number; beta2: number; orth_reg_weight: number; total_step?: number;
}
export interface Ia3Options { feedforward?: string[] }
export interface AdapterOptions {
  reduction?: number; bottleneck?: number; act: "relu" | "swish" | "gelu" | "tanh"; dropout: number; scaling: number;
  init: "bert" | "mam" | "houlsby";
}
export interface PrefixOptions { tokens: number; projection: boolean; hidden: number }
export interface PTuningOptions { tokens: number; encoder: "mlp" | "lstm"; hidden?: number; encoder_layers: number; encoder_dropout: number }
export interface PromptTuningOptions { tokens: number; init: { kind: "random" } | { kind: "vocab" } | { kind: "text"; text: string } }

interface MethodBase {
  /** Selector of the modules (or, for prefix/adapter methods, the layers) the method applies to. */
  target?: Selector;
  /**
   * The selector of the hybrid statement the method belongs to (`unipelt on layers[2:] {...}`):
   * the method applies only within the layers it selects.
   */
  within?: Selector;
  /** Index into Spec.hybrids when the method is a member of mam/unipelt/combine. */
  hybrid?: number;
  gated: boolean;
  span: Span;
  /** 1-based line, for messages that name another statement. */
  line: number;
}

export type MethodSpec =
  | (MethodBase & { method: "lora"; options: LoraOptions; overrides: { selector: Selector; options: Partial<Pick<LoraOptions, "r" | "alpha" | "dropout">>; span: Span }[] })
  | (MethodBase & { method: "adalora"; options: AdaloraOptions })
  | (MethodBase & { method: "ia3"; options: Ia3Options })
  | (MethodBase & { method: "bitfit"; options: Record<string, never> })
  | (MethodBase & { method: "adapter"; variant: AdapterVariant; options: AdapterOptions })
  | (MethodBase & { method: "prefix"; options: PrefixOptions })
  | (MethodBase & { method: "p_tuning_v2"; options: PrefixOptions })
  | (MethodBase & { method: "p_tuning"; options: PTuningOptions })
  | (MethodBase & { method: "prompt_tuning"; options: PromptTuningOptions });

export interface HybridSpec {
  kind: "mam" | "unipelt" | "combine";
  gated: boolean;
  /** Indices into Spec.methods. */
  members: number[];
  span: Span;
}

export interface FreezeSpec {
  action: "freeze" | "unfreeze";
  target: { kind: "base" } | { kind: "all" } | { kind: "selector"; selector: Selector };
  span: Span;
}

export interface TrainSpec {
  length: { epochs: number } | { steps: number };
  batch: number;
  gradAccum: number;
  lr: number;
  optimizer:
    | { kind: "adamw" | "adam"; betas: [number, number]; eps: number; weightDecay: number }
    | { kind: "sgd"; momentum: number; nesterov: boolean; weightDecay: number };
  schedule: "constant" | "linear" | "cosine";
  warmup: { steps: number } | { share: number };
  /** Max global gradient norm; 0 = no clipping. */
  clip: number;
  precision: "f32" | "f16";
  seed: number;
  logEvery: PeriodSpec;
  evalEvery: PeriodSpec;
  span?: Span;
}

export interface SaveSpec {
  /** Absent: once, at the end of the run. */
  every?: PeriodSpec;
  dir: string;
  keep?: number;
  span: Span;
}

export interface ExportSpec {
  what: "adapter" | "merged";
  dir: string;
  span: Span;
}

export interface Spec {
  file: string;
  version: string;
  model?: ModelSpec;
  selects: Record<string, Selector>;
  data: { train?: DataSpec; eval?: DataSpec };
  freeze: FreezeSpec[];
  methods: MethodSpec[];
  hybrids: HybridSpec[];
  init?: { from: string; span: Span };
  train: TrainSpec;
  save: SaveSpec[];
  export: ExportSpec[];
}
