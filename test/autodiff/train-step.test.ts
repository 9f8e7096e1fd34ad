/**
 * The optimizer half of a training step through trainStep: gradient accumulation as Accelerate
 * does it (against finite differences of the mean micro-batch loss), SGD, momentum, AdamW's first
 * step and global-norm clipping against hand-derived updates, and AdaLoRA's masking after the step.
 */
import { describe, expect, it } from "vitest";
import { initTrainState, trainStep } from "../../src/runtime/reference/executor.js";
import { batch, compile, fdAt, lossOf, pick, Rand, specText, weightsFor, worst } from "./helpers.js";

const LLAMA_Q = "freeze base; lora r=2 alpha=4 on q_proj;";

function setup(train: string, body = LLAMA_Q) {
  const { graph, profile } = compile(specText("tiny-llama", body, train));
  const weights = weightsFor(graph, profile, 4);
  const micro = [batch(graph, 2, 3, profile.dims.vocabSize, 21), batch(graph, 2, 3, profile.dims.vocabSize, 22)];
  return { graph, weights, micro };
}

describe("trainStep", () => {
  it("sums grad_accum micro-batches of loss/grad_accum: the gradient of the mean loss", () => {
    const { graph, weights, micro } = setup("grad_accum = 2; clip = 0; optimizer = sgd;");
    const state = initTrainState(graph, weights, "f64");
    const res = trainStep(graph, state, micro, { lr: 0, dtype: "f64" });
    const L = (p: Map<string, Float64Array>) => (lossOf(graph, p, micro[0]!) + lossOf(graph, p, micro[1]!)) / 2;
    expect(res.loss).toBeCloseTo(L(weights), 12);
    const r = new Rand(3);
    for (const [p, g] of res.grads) {
      const idx = pick(g.length, 3, r);
      expect(worst(idx.map((i) => g[i]!), fdAt(L, weights, p, idx), 1e-8, 1e-4)).toBeLessThan(1);
    }
  });

  it("runs in f32 too, within f32 rounding of the f64 run", () => {
    const { graph, weights, micro } = setup("clip = 0; optimizer = sgd;");
    const r64 = trainStep(graph, initTrainState(graph, weights, "f64"), [micro[0]!], { lr: 0.1, dtype: "f64" });
    const r32 = trainStep(graph, initTrainState(graph, weights, "f32"), [micro[0]!], { lr: 0.1, dtype: "f32" });
    expect(Math.abs(r32.loss - r64.loss)).toBeLessThan(1e-5 * Math.abs(r64.loss));
    for (const [p, g] of r64.grads) {
      const g32 = r32.grads.get(p)!;
      expect(g32).toBeInstanceOf(Float32Array);
      expect(worst([...g32], [...g], 1e-6, 1e-3)).toBeLessThan(1);
    }
  });

  it("sgd without momentum: p − lr·g; with momentum the buffer starts at g and then follows momentum·buf + g", () => {
    const plain = setup("clip = 0; optimizer = sgd;");
    const s0 = initTrainState(plain.graph, plain.weights, "f64");
    const r0 = trainStep(plain.graph, s0, [plain.micro[0]!], { lr: 0.1, dtype: "f64" });
    for (const [p, g] of r0.grads) {
      const w = plain.weights.get(p)!;
      expect(worst([...s0.params.get(p)!], [...w].map((x, i) => x - 0.1 * g[i]!), 1e-12, 1e-12)).toBeLessThan(1);
    }

    const m = setup("clip = 0; optimizer = sgd; momentum = 0.5;");
    const s = initTrainState(m.graph, m.weights, "f64");
    const g1 = trainStep(m.graph, s, [m.micro[0]!], { lr: 0.1, dtype: "f64" }).grads;
    const after1 = new Map([...s.params].map(([k, v]) => [k, Float64Array.from(v)]));
    const g2 = trainStep(m.graph, s, [m.micro[1]!], { lr: 0.1, dtype: "f64" }).grads;
    for (const [p, a] of g1) {
      const b = g2.get(p)!;
      const buf2 = [...a].map((x, i) => 0.5 * x + b[i]!);
      expect(worst([...s.params.get(p)!], [...after1.get(p)!].map((x, i) => x - 0.1 * buf2[i]!), 1e-12, 1e-10)).toBeLessThan(1);
      expect(worst([...s.optim.get(`optim.momentum.${p}`)!], buf2, 1e-12, 1e-10)).toBeLessThan(1);
    }
  });

  it("adamw's first step is p·(1 − lr·wd) − lr·g/(|g| + eps), and clipping scales every gradient by max_norm/‖g‖", () => {
    const { graph, weights, micro } = setup("clip = 0.01; optimizer = adamw; weight_decay = 0.1;");
    const state = initTrainState(graph, weights, "f64");
    const res = trainStep(graph, state, [micro[0]!], { lr: 0.01, dtype: "f64" });
    let ss = 0;
    for (const g of res.grads.values()) for (const x of g) ss += x * x;
    expect(res.gradNorm).toBeCloseTo(Math.sqrt(ss), 12);
    expect(res.gradNorm!).toBeGreaterThan(0.01);
    const coef = 0.01 / (Math.sqrt(ss) + 1e-6);
    for (const [p, g] of res.grads) {
      const w = weights.get(p)!;
      const want = [...w].map((x, i) => x * (1 - 0.01 * 0.1) - (0.01 * coef * g[i]!) / (Math.abs(coef * g[i]!) + 1e-8));
      expect(worst([...state.params.get(p)!], want, 1e-12, 1e-9)).toBeLessThan(1);
      expect(worst([...state.optim.get(`optim.m.${p}`)!], [...g].map((x) => 0.1 * coef * x), 1e-15, 1e-9)).toBeLessThan(1);
    }
  });

  it("adam (L2) moves a zero-gradient parameter by its weight decay", () => {
    const { graph, weights, micro } = setup("clip = 0; optimizer = adam; weight_decay = 0.5;");
    const state = initTrainState(graph, weights, "f64");
    const res = trainStep(graph, state, [micro[0]!], { lr: 0.01, dtype: "f64" });
    for (const [p, g] of res.grads) {
      const w = weights.get(p)!;
      // L2: g' = g + wd·p, and the first Adam step moves by lr·sign(g') (up to eps).
      const want = [...w].map((x, i) => {
        const gg = g[i]! + 0.5 * x;
        return x - (0.01 * gg) / (Math.abs(gg) + 1e-8);
      });
      expect(worst([...state.params.get(p)!], want, 1e-12, 1e-9)).toBeLessThan(1);
    }
  });

  it("adalora: the step adds the orthogonal regulariser to the loss and masks E down to the budget after the update", () => {
    const body = "freeze base; adalora r=1 alpha=4 on q_proj { init_r = 3; total_step = 4; tinit = 0; tfinal = 1; delta_t = 1; }";
    const { graph, weights, micro } = setup("clip = 0; optimizer = adamw;", body);
    const vals = graph.ops.find((op) => op.op === "adalora_orth_reg")!;
    expect(vals.inputs.sort()).toEqual(graph.params.filter((p) => /lora_[AB]$/.test(p.name)).map((p) => p.name).sort());
    const state = initTrainState(graph, weights, "f64");
    const mats = ["model.layers.0.self_attn.q_proj", "model.layers.1.self_attn.q_proj"].map((m) => ({ name: m, A: `${m}.lora_A`, E: `${m}.lora_E`, B: `${m}.lora_B` }));
    const config = { targetR: 1, tinit: 0, tfinal: 1, deltaT: 1, totalStep: 4, beta1: 0.85, beta2: 0.85 };
    const zerosAfter: number[] = [];
    for (let s = 0; s < 3; s++) {
      trainStep(graph, state, [micro[s % 2]!], { lr: 0.01, dtype: "f64", adalora: { config, matrices: mats } });
      zerosAfter.push(mats.reduce((n, m) => n + [...state.params.get(m.E)!].filter((x) => x === 0).length, 0));
    }
    // init budget 6, target 2; PEFT's global_step is 0, 1, 2 for these three steps (end =
    // total_step − tfinal = 3): b(0) = 6 (t ≤ tinit, no mask), b(1) = int(4·(1 − 1/3)³ + 2) = 3,
    // b(2) = int(4·(1/3)³ + 2) = 2.
    expect(zerosAfter).toEqual([0, 3, 4]);
  });
});
