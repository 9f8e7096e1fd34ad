// Cross-entropy and its gradient against the reference (float64 softmax): a vocabulary wider than
// the workgroup and not a multiple of it, one narrower, ignored labels, the shift inside, the mean
// over counted tokens computed on the device, and a batch with no counted token (NaN loss, zero
// gradient, as torch); and the fuse pass's cross_entropy_grad, which must give both exactly. Both
// row variants: a workgroup per row (GPUs), a thread per row (CPU adapters).

import { beforeAll, describe, expect, it } from "vitest";
import type { Device } from "../../src/runtime/device/index.js";
import { randomF32, ROW_VARIANTS, testDevice } from "./helpers.js";
import { checkOp, f32t, i32t, runLowered } from "./lowered.js";

// The loss is a mean of log-sum-exps of about log V ≈ 7, kept in f32.
const LOSS_TOL = { atol: 1e-5, rtol: 1e-5 };
const GRAD_TOL = { atol: 1e-7, rtol: 1e-4 };

let dev: Device;
beforeAll(async () => {
  dev = await testDevice();
});

function labels(B: number, T: number, V: number, seed: number, ignoreEvery: number): Int32Array {
  return Int32Array.from(randomF32(B * T, seed), (v, i) => (i % ignoreEvery === 1 ? -100 : Math.min(V - 1, Math.floor(((v + 1) / 2) * V))));
}

describe.each(ROW_VARIANTS)("cross_entropy, %s", (_, caps) => {
  for (const [B, T, V] of [[2, 7, 1001], [3, 5, 37]] as const) {
    it(`B=${B} T=${T} V=${V} with ignored labels`, async () => {
      const logits = f32t([B, T, V], randomF32(B * T * V, V).map((v) => 6 * v));
      const lab = i32t([B, T], labels(B, T, V, B + T, 3));
      await checkOp(dev, "cross_entropy", [logits, lab], { ignore_index: -100 }, LOSS_TOL, undefined, caps);
      await checkOp(dev, "cross_entropy_backward", [logits, lab, f32t([], new Float32Array([0.7]))], { ignore_index: -100 }, GRAD_TOL, undefined, caps);
    });

    it(`B=${B} T=${T} V=${V}: cross_entropy_grad is the loss and its backward, bit for bit`, async () => {
      const logits = f32t([B, T, V], randomF32(B * T * V, V + 1).map((v) => 6 * v));
      const lab = i32t([B, T], labels(B, T, V, B + T + 1, 4));
      const dloss = f32t([], new Float32Array([0.7]));
      const fused = await checkOp(dev, "cross_entropy_grad", [logits, lab, dloss], { ignore_index: -100 }, GRAD_TOL, undefined, caps);
      const loss = await runLowered(dev, "cross_entropy", [logits, lab], { ignore_index: -100 }, undefined, caps);
      const grad = await runLowered(dev, "cross_entropy_backward", [logits, lab, dloss], { ignore_index: -100 }, undefined, caps);
      expect(Array.from(fused.outputs[0]!)).toEqual(Array.from(loss.outputs[0]!));
      expect(Array.from(fused.outputs[1]!)).toEqual(Array.from(grad.outputs[0]!));
    });
  }

  it("no counted token: NaN loss and a zero gradient", async () => {
    const [B, T, V] = [3, 5, 37];
    const logits = f32t([B, T, V], randomF32(B * T * V, 1));
    const lab = i32t([B, T], new Int32Array(B * T).fill(-100));
    const { outputs } = await runLowered(dev, "cross_entropy", [logits, lab], { ignore_index: -100 }, undefined, caps);
    expect(Number.isNaN(outputs[0]![0])).toBe(true);
    await checkOp(dev, "cross_entropy_backward", [logits, lab, f32t([], new Float32Array([1]))], { ignore_index: -100 }, GRAD_TOL, undefined, caps);
    const fused = await runLowered(dev, "cross_entropy_grad", [logits, lab, f32t([], new Float32Array([1]))], { ignore_index: -100 }, undefined, caps);
    expect(Number.isNaN(fused.outputs[0]![0])).toBe(true);
    expect(fused.outputs[1]!.every((v) => v === 0)).toBe(true);
  });
});
