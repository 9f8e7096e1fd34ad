// Reductions against the reference executor: sum_to_shape over added, stretched and mixed axes
// (down to a scalar), add_grad over more inputs than one kernel binds, mean over the sequence and
// its backward, and chatglm2's fused SwiGLU forward and backward.

import { beforeAll, describe, expect, it } from "vitest";
import type { Device } from "../../src/runtime/device/index.js";
import { randomF32, testDevice } from "./helpers.js";
import { checkOp, f32t, type TestTensor } from "./lowered.js";

// Sums run in the reference's order; tolerance covers an FMA a driver may fuse.
const SUM_TOL = { atol: 1e-6, rtol: 1e-6 };
const TOL = { atol: 2e-6, rtol: 2e-5 };

let dev: Device;
beforeAll(async () => {
  dev = await testDevice();
});

const rand = (shape: number[], seed: number): TestTensor => f32t(shape, randomF32(shape.reduce((a, b) => a * b, 1), seed));

describe("sums", () => {
  const cases: [number[], number[]][] = [
    [[3, 4, 5], [5]],
    [[3, 4, 5], [4, 1]],
    [[2, 3, 5], [1, 3, 1]],
    [[7, 6], []],
    [[3, 4, 5], [3, 4, 5]],
  ];
  for (const [from, to] of cases) {
    it(`sum_to_shape ${JSON.stringify(from)} → ${JSON.stringify(to)}`, async () => {
      await checkOp(dev, "sum_to_shape", [rand(from, from.length + to.length)], { shape: to }, SUM_TOL);
    });
  }

  it("add_grad of 3 inputs and of 9 (two kernels)", async () => {
    await checkOp(dev, "add_grad", [1, 2, 3].map((s) => rand([5, 7], s)), {}, SUM_TOL);
    await checkOp(dev, "add_grad", [1, 2, 3, 4, 5, 6, 7, 8, 9].map((s) => rand([5, 7], 10 + s)), {}, SUM_TOL);
    // A size that is a multiple of 4 runs four elements a thread.
    const r = await checkOp(dev, "add_grad", [1, 2, 3, 4, 5, 6, 7, 8].map((s) => rand([6, 8], 20 + s)), {}, SUM_TOL);
    expect(r.lowered.kernels.map((k) => k.label)).toEqual(["add_grad_48_0+7_v4", "add_grad_48_7+1_v4"]);
  });
});

describe("sequence mean and swiglu", () => {
  it("mean_seq and mean_seq_backward", async () => {
    await checkOp(dev, "mean_seq", [rand([2, 7, 5], 21)], {}, TOL);
    await checkOp(dev, "mean_seq", [rand([3, 5], 22)], {}, TOL);
    await checkOp(dev, "mean_seq_backward", [rand([2, 5], 23)], { length: 7 }, TOL);
  });

  it("swiglu and swiglu_backward", async () => {
    const x = f32t([3, 5, 14], randomF32(210, 31).map((v) => 6 * v));
    await checkOp(dev, "swiglu", [x], {}, TOL);
    await checkOp(dev, "swiglu_backward", [x, rand([3, 5, 7], 32)], {}, TOL);
  });
});
