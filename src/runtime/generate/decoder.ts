/**
 * Next-token logits for a growing sequence. The reference decoder runs the whole forward graph on
 * the sequence each time (no cache: it exists to be right); the WebGPU decoder (gpu-decoder.ts)
 * keeps a KV cache. Both run the inference form of the graph: dropout off, no loss.
 */
import { inferenceGraph } from "../../codegen/wgsl/decode/inference.js";
import type { Graph } from "../../ir/index.js";
import { runGraph } from "../reference/executor.js";
import type { Floats } from "../reference/floats.js";
import { graphInputs } from "../train/inputs.js";

export interface Decoder {
  /** Logits of the position after the last token of `ids`. */
  next(ids: readonly number[]): Promise<Float32Array>;
  /** The longest sequence next() accepts, when the decoder has a limit (a KV cache's size). */
  readonly maxTokens?: number;
  dispose(): void;
}

export class ReferenceDecoder implements Decoder {
  private readonly graph: Graph;

  constructor(
    forward: Graph,
    private readonly params: ReadonlyMap<string, Floats>,
  ) {
    this.graph = inferenceGraph(forward);
  }

  async next(ids: readonly number[]): Promise<Float32Array> {
    const T = ids.length;
    const labels = new Int32Array(T).fill(-100);
    const inputs = graphInputs(this.graph, { inputIds: Int32Array.from(ids), labels, B: 1, T, tokens: T, lossTokens: 0 });
    const vals = runGraph(this.graph, { params: this.params, inputs, dtype: "f32" });
    const logits = vals.get("logits")!;
    const V = logits.shape[logits.shape.length - 1]!;
    const L = logits.shape[1]!;
    return Float32Array.from((logits.data as Floats).subarray((L - 1) * V, L * V));
  }

  dispose(): void {}
}
