/**
 * The training backend on the CPU reference executor: slow, exact, and the oracle the WebGPU
 * backend is tested against.
 */
import type { Graph } from "../../ir/index.js";
import { initTrainState, runGraph, scalar, trainStep, type AdaloraAllocation, type TrainState } from "../reference/executor.js";
import type { MicroBatch, StepOutcome, TrainBackend, TrainSnapshot } from "./backend.js";
import type { Floats } from "../reference/floats.js";
import { RankAllocator } from "../reference/rank-allocator.js";
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

  async rankPattern(): Promise<Record<string, boolean[]> | undefined> {
    return this.state.allocator?.rankPattern;
  }

  async snapshot(): Promise<TrainSnapshot> {
    const f32 = (v: Floats) => (v instanceof Float32Array ? v.slice() : Float32Array.from(v));
    const params = new Map<string, Float32Array>();
    for (const p of this.trainGraph.params) {
      if (!p.trainable && p.origin === "base") continue;
      const v = this.state.params.get(p.name);
      if (v) params.set(p.name, f32(v));
    }
    const optim = new Map([...this.state.optim].map(([k, v]) => [k, f32(v)]));
    const snap: TrainSnapshot = { step: this.state.step, params, optim };
    const a = this.state.allocator?.exportState();
    if (a) snap.allocator = { tensors: new Map([...a.tensors].map(([k, v]) => [k, f32(v)])), ...(a.rankPattern ? { rankPattern: a.rankPattern } : {}) };
    return snap;
  }

  async restore(s: TrainSnapshot): Promise<void> {
    this.state.step = s.step;
    for (const [k, v] of s.params) this.state.params.set(k, v.slice());
    for (const [k, v] of s.optim) this.state.optim.set(k, v.slice());
    if (s.allocator && this.adalora) {
      const r = new Map(this.adalora.matrices.map((m) => [m.name, this.state.params.get(m.E)!.length]));
      const allocator = new RankAllocator(this.adalora.config, this.adalora.matrices.map((m) => ({ name: m.name, r: r.get(m.name)! })));
      allocator.importState({ tensors: new Map([...s.allocator.tensors].map(([k, v]) => [k, v.slice()])), ...(s.allocator.rankPattern ? { rankPattern: s.allocator.rankPattern } : {}) });
      this.state.allocator = allocator;
    }
  }

  dispose(): void {}
}
