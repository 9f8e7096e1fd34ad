/**
 * UniPELT's gate (peft-methods.md §9.3, §11), shared by gated LoRA, bottleneck adapters and prefixes:
 * g = mean over the sequence of sigmoid(Linear(d, 1)(u)), one scalar per batch row, built from
 * primitive ops (linear, sigmoid, mean_seq) and reshaped to [B,1,...,1] so it broadcasts over the
 * tensor it multiplies. The mean runs over every position, padding included, as AdapterHub does.
 */
import type { ParamInit } from "../../ir/index.js";
import type { Injector } from "./common.js";

export interface GateSpec {
  /** Module the gate ops belong to, and the prefix of its parameter names (`<name>.weight`, `<name>.bias`). */
  module: string;
  name: string;
  /** The value the gate reads, [B,T,d]. */
  input: string;
  /** Rank of the tensor the gate will multiply: the result is [B, 1 × (rank−1)]. */
  targetRank: number;
  weightInit: ParamInit;
  biasInit: ParamInit;
  owner: { origin: string; method: number };
}

/** Adds the gate's parameters and ops; returns the broadcastable gate value. */
export function addGate(inj: Injector, s: GateSpec): string {
  const { b } = inj;
  const t = b.typeOf(s.input);
  const d = t.shape[t.shape.length - 1];
  if (typeof d !== "number") throw new Error(`gate input ${s.input} has a symbolic feature axis`);
  const w = inj.param(`${s.name}.weight`, [1, d], s.weightInit, s.owner);
  const bias = inj.param(`${s.name}.bias`, [1], s.biasInit, s.owner);
  const z = b.op("linear", s.module, [s.input, w, bias], {}, b.fresh(`${s.name}.out`));
  const sig = b.op("sigmoid", s.module, [z], {}, b.fresh(`${s.name}.sigmoid`));
  const mean = b.op("mean_seq", s.module, [sig], {}, b.fresh(`${s.name}.mean`));
  const shape = [t.shape[0]!, ...Array.from({ length: s.targetRank - 1 }, () => 1)];
  return b.op("reshape", s.module, [mean], { shape }, b.fresh(`${s.name}.g`));
}
