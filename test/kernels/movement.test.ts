// Data movement against the reference executor's loops, exact: views that must be aliases (and at
// which byte offset), pieces that must be copies (inner axes, or an offset the binding alignment
// forbids), i32 labels, slice_backward's zero padding, concat, broadcast and full.

import { beforeAll, describe, expect, it } from "vitest";
import type { Attrs } from "../../src/ir/index.js";
import type { Device } from "../../src/runtime/device/index.js";
import { randomF32, testDevice } from "./helpers.js";
import { checkOp, f32t, i32t, type TestTensor } from "./lowered.js";

const EXACT = { atol: 0, rtol: 0 };

let dev: Device;
beforeAll(async () => {
  dev = await testDevice();
});

const rand = (shape: number[], seed: number): TestTensor => f32t(shape, randomF32(shape.reduce((a, b) => a * b, 1), seed));
const ints = (shape: number[], seed: number): TestTensor => i32t(shape, Int32Array.from(randomF32(shape.reduce((a, b) => a * b, 1), seed), (v) => Math.round(v * 1000)));

describe("views", () => {
  it("reshape, split_heads and merge_heads alias their input at offset 0", async () => {
    const cases: [string, TestTensor, Attrs][] = [
      ["reshape", rand([3, 4, 5], 1), { shape: [12, 5] }],
      ["split_heads", rand([2, 3, 12], 2), { heads: 4 }],
      ["merge_heads", rand([2, 3, 4, 3], 3), {}],
      ["broadcast", rand([3, 5], 4), { shape: [1, 3, 5] }],
    ];
    for (const [op, x, attrs] of cases) {
      const { lowered } = await checkOp(dev, op, [x], attrs, EXACT);
      expect(lowered.kernels, op).toEqual([]);
      expect(lowered.aliases, op).toEqual([{ out: 0, input: 0, offsetBytes: 0 }]);
    }
  });
});

describe("split and slice", () => {
  it("split along the last axis copies every piece", async () => {
    const { lowered } = await checkOp(dev, "split", [rand([2, 3, 12], 5)], { axis: -1, sizes: [4, 5, 3] }, EXACT);
    expect(lowered.aliases ?? []).toEqual([]);
    expect(lowered.kernels.length).toBe(3);
  });

  it("split along the first axis aliases pieces at aligned offsets and copies the rest", async () => {
    const { lowered } = await checkOp(dev, "split", [rand([128, 3], 6)], { axis: 0, sizes: [64, 21, 43] }, EXACT);
    expect(lowered.aliases).toEqual([
      { out: 0, input: 0, offsetBytes: 0 },
      { out: 1, input: 0, offsetBytes: 768 },
    ]);
    expect(lowered.kernels.length).toBe(1);
  });

  it("slice: an inner axis is copied, an aligned leading range is an alias, i32 labels copy exactly", async () => {
    await checkOp(dev, "slice", [rand([2, 9, 5], 7)], { axis: 1, start: 3, end: 7 }, EXACT);
    const { lowered } = await checkOp(dev, "slice", [rand([70, 8], 8)], { axis: 0, start: 16, end: 40 }, EXACT);
    expect(lowered.aliases).toEqual([{ out: 0, input: 0, offsetBytes: 512 }]);
    await checkOp(dev, "slice", [ints([2, 9], 9)], { axis: 1, start: 2, end: 9 }, EXACT);
  });

  it("slice_backward pads with zeros", async () => {
    await checkOp(dev, "slice_backward", [rand([2, 4, 5], 10)], { axis: 1, start: 3, length: 9 }, EXACT);
    await checkOp(dev, "slice_backward", [rand([3, 7], 11)], { axis: -1, start: 0, length: 10 }, EXACT);
  });
});

describe("concat, broadcast, full, offset", () => {
  it("concat along an inner axis, of floats and of i32 labels", async () => {
    await checkOp(dev, "concat", [rand([2, 3, 5], 12), rand([2, 1, 5], 13), rand([2, 4, 5], 14)], { axis: 1 }, EXACT);
    await checkOp(dev, "concat", [ints([2, 3], 15), ints([2, 5], 16)], { axis: -1 }, EXACT);
  });

  it("broadcast repeats along new and size-1 axes", async () => {
    await checkOp(dev, "broadcast", [rand([1, 3, 5], 17)], { shape: [4, 3, 5] }, EXACT);
    await checkOp(dev, "broadcast", [rand([3, 1], 18)], { shape: [2, 3, 7] }, EXACT);
  });

  it("full in f32 and i32", async () => {
    await checkOp(dev, "full", [], { shape: [3, 7], value: 0.25, dtype: "f32" }, EXACT);
    await checkOp(dev, "full", [], { shape: [2, 5], value: -100, dtype: "i32" }, EXACT);
  });

  it("offset adds an integer to i32 positions", async () => {
    await checkOp(dev, "offset", [ints([3, 7], 19)], { by: 5 }, EXACT);
    await checkOp(dev, "offset", [ints([1, 1], 20)], { by: -2 }, EXACT);
  });
});
