/**
 * The training backend on the CPU reference executor: slow, exact, and the oracle the WebGPU
 * backend is tested against.
 */
import type { Graph } from "../../ir/index.js";
import { initTrainState, runGraph, scalar, trainStep, type AdaloraAllocation, type TrainState } from "../reference/executor.js";
import type { MicroBatch, StepOutcome, TrainBackend } from "./backend.js";
import { graphInputs } from "./inputs.js";

export class ReferenceBackend implements TrainBackend {
  readonly device = "reference (CPU)";
  private readonly state: TrainState;

  constructor(
    private readonly trainGraph: Graph,
    private readonly evalGraph: Graph,
    params: ReadonlyMap<string, Float32Array>,
    private readonly seed: number,
    private readonly adalora?: AdaloraAllocation,
  ) {
    this.state = initTrainState(trainGraph, params, "f32");
  }

  async step(micro: readonly MicroBatch[], lr: number): Promise<StepOutcome> {
    const r = trainStep(this.trainGraph, this.state, micro.map((m) => graphInputs(this.trainGraph, m)), {
      lr,
      dtype: "f32",
      seed: this.seed,
      ...(this.adalora ? { adalora: this.adalora } : {}),
    });
    return r.gradNorm !== undefined ? { loss: r.loss, gradNorm: r.gradNorm } : { loss: r.loss };
  }

  async evalLoss(batch: MicroBatch): Promise<number> {
    const vals = runGraph(this.evalGraph, { params: this.state.params, inputs: graphInputs(this.evalGraph, batch), dtype: "f32", seed: this.seed });
    return scalar(vals, "loss");
  }

  async values(): Promise<Map<string, Float32Array>> {
    const out = new Map<string, Float32Array>();
    for (const p of this.trainGraph.params) {
      if (!p.trainable && p.origin === "base") continue;
      const v = this.state.params.get(p.name);
      if (v) out.set(p.name, v instanceof Float32Array ? v : Float32Array.from(v));
    }
    return out;
  }

  rankPattern(): Record<string, boolean[]> | undefined {
    return this.state.allocator?.rankPattern;
  }

  /** Optimizer state and step count, for checkpoints that resume. */
  optimizerState(): { step: number; tensors: Map<string, Float32Array> } {
    const tensors = new Map<string, Float32Array>();
    for (const [k, v] of this.state.optim) tensors.set(k, v instanceof Float32Array ? v : Float32Array.from(v));
    return { step: this.state.step, tensors };
  }

  dispose(): void {}
}
