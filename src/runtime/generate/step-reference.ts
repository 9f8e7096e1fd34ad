/**
 * The decode-step graph run by the CPU reference executor, its caches carried from step to step
 * as graph values. It decodes exactly as the GPU decoder does (same graph, same cache plan) with
 * the reference kernels, so it checks the graph transformation apart from the WGSL.
 */
import { decodeStepGraph, ROW_INPUT, type DecodeSize, type DecodeStep } from "../../codegen/wgsl/decode/step-graph.js";
import type { Graph } from "../../ir/index.js";
import { runGraph, type Tensor } from "../reference/executor.js";
import { CachePlan } from "./cache-plan.js";
import type { Decoder } from "./decoder.js";
import { stepParams } from "./step-params.js";

export class StepReferenceDecoder implements Decoder {
  readonly step: DecodeStep;
  private readonly params: Map<string, Float32Array>;
  private readonly caches = new Map<string, Tensor>();
  private readonly plan: CachePlan;

  constructor(forward: Graph, params: ReadonlyMap<string, Float32Array>, size: DecodeSize) {
    this.step = decodeStepGraph(forward, size);
    this.params = stepParams(this.step, params);
    for (const c of this.step.caches) this.caches.set(c.name, { data: new Float32Array(c.shape[0] * c.shape[1] * c.shape[2]), shape: c.shape });
    this.plan = new CachePlan(this.step.virtualTokens, this.step.maxLen);
  }

  get maxTokens(): number {
    return this.plan.maxTokens;
  }

  async next(ids: readonly number[]): Promise<Float32Array> {
    let logits: Float32Array | undefined;
    for (const s of this.plan.plan(ids)) {
      const one = (v: number): Tensor => ({ data: Int32Array.of(v), shape: [1, 1] });
      const inputs: Record<string, Tensor> = { input_ids: one(s.id), positions: one(s.pos), [ROW_INPUT]: one(s.row), ...Object.fromEntries(this.caches) };
      const vals = runGraph(this.step.graph, { params: this.params, inputs, dtype: "f32" });
      for (const c of this.step.caches) this.caches.set(c.name, vals.get(`${c.name}.next`)!);
      logits = Float32Array.from(vals.get("logits")!.data);
    }
    this.plan.commit(ids);
    return logits!;
  }

  dispose(): void {}
}
