/**
 * One optimizer step on the GPU backend against the reference executor's trainStep in f32 on the
 * same padded micro-batches: the loss, every summed gradient, every updated parameter and the
 * optimizer state; then the evaluation loss of the updated model.
 */
import { expect } from "vitest";
import { GpuBackend, padBatch } from "../../src/runtime/gpu/index.js";
import { chooseF16Weights } from "../../src/codegen/wgsl/program/index.js";
import { f16ArrayToF32, f32ArrayToF16 } from "../../src/runtime/io/half.js";
import { initTrainState, runGraph, scalar, trainStep, type AdaloraAllocation } from "../../src/runtime/reference/executor.js";
import { graphInputs } from "../../src/runtime/train/inputs.js";
import { gradName, LR_INPUT, STEP_INPUT, UPDATE_OPS } from "../../src/ir/step-names.js";
import type { MicroBatch } from "../../src/runtime/train/backend.js";
import type { Compiled } from "./helpers.js";
import { expectNear, startWeights, testDevice } from "./helpers.js";

export const TOL = { loss: 2e-5, grad: { atol: 1e-6, rtol: 2e-4 }, param: { atol: 1e-6, rtol: 2e-4 } };

/** Every tensor the update ops write (parameters and optimizer state), from the given gradients. */
function referenceUpdate(c: Compiled, params: ReadonlyMap<string, Float32Array>, grads: ReadonlyMap<string, Float32Array>, lr: number): Map<string, Float32Array> {
  const st = initTrainState(c.train, params, "f32");
  const feed: Record<string, Float32Array> = { [LR_INPUT]: Float32Array.of(lr), [STEP_INPUT]: Float32Array.of(1) };
  for (const [k, v] of st.optim) feed[k] = v as Float32Array;
  const values = new Map([...grads].map(([k, v]) => [gradName(k), { data: v, shape: [v.length] }]));
  const vals = runGraph(c.train, { params, inputs: feed, dtype: "f32", values, ops: (op) => UPDATE_OPS.has(op.op) });
  const out = new Map<string, Float32Array>();
  for (const op of c.train.ops) {
    if (!UPDATE_OPS.has(op.op) || op.op === "clip_grad_norm") continue;
    const [p, , ...rest] = op.inputs;
    [p!, ...rest.filter((v) => st.optim.has(v))].forEach((name, i) => out.set(name, vals.get(op.outputs[i]!.name)!.data as Float32Array));
  }
  return out;
}

export interface StepCheck {
  maxGradDiff: number;
  gradTensors: number;
  backend: GpuBackend;
  /** Weights stored f16. */
  f16Weights: number;
}

export async function checkStep(c: Compiled, micro: MicroBatch[], o: { B: number; T: number; seed?: number; lr?: number; adalora?: AdaloraAllocation; f16?: boolean; maxBindingBytes?: number; mergeDispatches?: boolean }): Promise<StepCheck> {
  const dev = await testDevice();
  const start = startWeights(c.train, c.profile);
  // With f16 storage the oracle runs on the same rounded weights the device holds.
  const rounded = o.f16 ? chooseF16Weights([c.train, c.evalGraph]) : new Set<string>();
  const params = new Map([...start].map(([k, v]) => [k, rounded.has(k) ? f16ArrayToF32(f32ArrayToF16(v)) : v]));
  const seed = o.seed ?? 7;
  const lr = o.lr ?? 1e-2;
  const backend = await GpuBackend.create(dev, { trainGraph: c.train, evalGraph: c.evalGraph, params, seed, B: o.B, T: o.T, matmul: "register", f16Weights: o.f16 === true, ...(o.adalora ? { adalora: o.adalora } : {}), ...(o.maxBindingBytes ? { maxBindingBytes: o.maxBindingBytes } : {}), ...(o.mergeDispatches === false ? { mergeDispatches: false } : {}) });
  const padded = micro.map((m) => padBatch(m, o.B, o.T));
  const state = initTrainState(c.train, params, "f32");
  const ref = trainStep(c.train, state, padded.map((m) => graphInputs(c.train, m)), { lr, dtype: "f32", seed, ...(o.adalora ? { adalora: o.adalora } : {}) });
  const got = await backend.step(micro, lr);

  expect(Math.abs(got.loss - ref.loss)).toBeLessThanOrEqual(TOL.loss * Math.max(1, Math.abs(ref.loss)));
  if (ref.gradNorm !== undefined) expect(Math.abs(got.gradNorm! - ref.gradNorm)).toBeLessThanOrEqual(1e-4 * Math.max(1, ref.gradNorm));
  const grads = await backend.grads();
  expect([...grads.keys()].sort()).toEqual([...ref.grads.keys()].sort());
  let maxGradDiff = 0;
  for (const [k, want] of ref.grads) maxGradDiff = Math.max(maxGradDiff, expectNear(`grad ${k}`, grads.get(k)!, want, TOL.grad));
  // The update, against the reference optimizer applied to the GPU's own (already checked) gradients:
  // at step 1 Adam moves each weight by about lr·g/(|g| + eps), which f32 noise in a gradient near
  // zero can swing by up to lr, so only the same gradients give the update a tight oracle.
  const want = referenceUpdate(c, params, grads, lr);
  // AdaLoRA's allocation then zeroes the pruned entries of E, as the reference's pattern says.
  for (const m of o.adalora?.matrices ?? []) {
    const keep = state.allocator?.rankPattern?.[m.name];
    if (keep) want.set(m.E, want.get(m.E)!.map((v, i) => (keep[i] ? v : 0)));
  }
  const values = await backend.values();
  for (const [k, v] of values) expectNear(`updated ${k}`, v, want.get(k) ?? state.params.get(k)!, TOL.param);
  const snap = await backend.snapshot();
  for (const [k, v] of state.optim) expectNear(`state ${k}`, snap.optim.get(k)!, want.get(k) ?? v, TOL.param);
  if (o.adalora) expect(await backend.rankPattern()).toEqual(state.allocator?.rankPattern);

  // Evaluation of the updated model, on the first micro-batch.
  const evalRef = scalar(runGraph(c.evalGraph, { params: state.params, inputs: graphInputs(c.evalGraph, padded[0]!), dtype: "f32", seed }), "loss");
  const evalGot = await backend.evalLoss(micro[0]!);
  expect(Math.abs(evalGot - evalRef)).toBeLessThanOrEqual(TOL.loss * Math.max(1, Math.abs(evalRef)));
  return { maxGradDiff, gradTensors: grads.size, backend, f16Weights: rounded.size };
}
