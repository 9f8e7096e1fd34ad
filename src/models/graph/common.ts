/**
 * What the three base-graph builders share: parameters registered from the profile in its module
 * order (torch's registration order, so the IR lists weights as a state dict does), and the
 * module-shaped pieces (linear, norm, embedding, head + loss) whose names follow the HF paths.
 */
import { GraphBuilder } from "../../ir/builder.js";
import type { DType } from "../../ir/shape.js";
import type { ModelProfile, ModuleInfo } from "../types.js";

export interface BaseGraphOptions {
  /** Storage dtype of the frozen base weights (activations stay f32). Default f32. */
  paramDtype?: Extract<DType, "f32" | "f16">;
  /**
   * Insert the model's own hidden/residual dropout where its config gives p > 0 (train mode).
   * Default false: the base forward is deterministic. Attention-probability dropout is not modelled.
   */
  dropout?: boolean;
}

/** Names of the graph's inputs and outputs, the same for every architecture. */
export const INPUT_IDS = "input_ids";
export const LABELS = "labels";
export const POSITIONS = "positions";
export const LOGITS = "logits";
export const LOSS = "loss";

export class BaseGraph {
  readonly b: GraphBuilder;
  private readonly modules = new Map<string, ModuleInfo>();

  constructor(
    readonly profile: ModelProfile,
    readonly opts: BaseGraphOptions,
  ) {
    this.b = new GraphBuilder(profile.source);
    for (const m of profile.modules) this.modules.set(m.path, m);
    this.b.input(INPUT_IDS, "i32", ["B", "T"]);
    this.b.input(LABELS, "i32", ["B", "T"]);
    this.b.input(POSITIONS, "i32", ["B", "T"]);
    for (const m of profile.modules)
      for (const p of m.params) this.b.param({ name: p.name, shape: p.shape, dtype: opts.paramDtype ?? "f32" });
  }

  module(path: string): ModuleInfo {
    const m = this.modules.get(path);
    if (!m) throw new Error(`profile ${this.profile.name} has no module '${path}'`);
    return m;
  }

  has(path: string): boolean {
    return this.modules.has(path);
  }

  private paramOf(m: ModuleInfo, leaf: "weight" | "bias"): string | undefined {
    if (leaf === "weight" && m.tiedTo !== undefined) return m.tiedTo;
    return m.params.find((p) => p.name.endsWith(`.${leaf}`))?.name;
  }

  private weight(m: ModuleInfo): string {
    const w = this.paramOf(m, "weight");
    if (!w) throw new Error(`module '${m.path}' has no weight`);
    return w;
  }

  /** `path.out = x·Wᵀ (+ b)`; a tied head reads the embedding table as its [vocab, hidden] weight. */
  linear(path: string, x: string, name = `${path}.out`): string {
    const m = this.module(path);
    const bias = m.hasBias ? this.paramOf(m, "bias") : undefined;
    const ins = bias ? [x, this.weight(m), bias] : [x, this.weight(m)];
    return this.b.op("linear", path, ins, m.transposed ? { transposed: true } : {}, name);
  }

  norm(path: string, x: string): string {
    const m = this.module(path);
    const eps = this.profile.dims.normEps;
    if (m.kind === "rmsnorm") return this.b.op("rmsnorm", path, [x, this.weight(m)], { eps }, `${path}.out`);
    if (m.kind === "layernorm") {
      const bias = this.paramOf(m, "bias");
      if (!bias) throw new Error(`layernorm '${path}' has no bias`);
      return this.b.op("layernorm", path, [x, this.weight(m), bias], { eps }, `${path}.out`);
    }
    throw new Error(`module '${path}' is a ${m.kind}, not a norm`);
  }

  embed(path: string, ids: string): string {
    return this.b.op("embedding", path, [ids, this.weight(this.module(path))], {}, `${path}.out`);
  }

  /** Dropout when enabled and p > 0, else `x` itself. */
  dropout(x: string, p: number, module: string, name: string): string {
    if (!this.opts.dropout || !(p > 0)) return x;
    return this.b.op("dropout", module, [x], { p, stream: name }, name);
  }

  /** [B,T,H·hd] -> [B,T,H,hd] under `module`, named `module.name`; no axis but the last is spelled out, so passes may grow T. */
  heads(x: string, heads: number, module: string, name: string): string {
    return this.b.op("split_heads", module, [x], { heads }, `${module}.${name}`);
  }

  /** [B,T,H,hd] -> [B,T,H·hd], named `module.attn_merged`. */
  mergeHeads(x: string, module: string): string {
    return this.b.op("merge_heads", module, [x], {}, `${module}.attn_merged`);
  }

  /** The head's logits and the shifted cross-entropy against `labels`; both become graph outputs. */
  headAndLoss(headPath: string, h: string): void {
    const logits = this.linear(headPath, h, LOGITS);
    const loss = this.b.op("cross_entropy", "", [logits, LABELS], { ignore_index: -100 }, LOSS);
    this.b.output(loss);
    this.b.output(logits);
  }

  /** A number from config.json that the profile does not normalise; `fallback` when absent. */
  configNumber(key: string, fallback: number): number {
    const v = this.profile.config[key];
    return typeof v === "number" && Number.isFinite(v) ? v : fallback;
  }
}
