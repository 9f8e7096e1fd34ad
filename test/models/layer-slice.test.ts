import { describe, expect, it } from "vitest";
import { sliceIndices, sliceText, slicesText } from "../../src/models/layer-slice.js";
import type { LayerSlice, Span } from "../../src/parser/ast.js";

const span: Span = { line: 1, column: 1, endLine: 1, endColumn: 2, start: 0, end: 1 };
const sl = (start?: number, stop?: number, step?: number): LayerSlice => {
  const s: LayerSlice = { kind: "slice", span };
  if (start !== undefined) s.start = start;
  if (stop !== undefined) s.stop = stop;
  if (step !== undefined) s.step = step;
  return s;
};
const u = undefined;

// Expected values printed by CPython: list(range(5))[slice(start, stop, step)].
const PYTHON: [number | undefined, number | undefined, number | undefined, number[]][] = [
  [u, u, u, [0, 1, 2, 3, 4]],
  [2, u, u, [2, 3, 4]],
  [u, 2, u, [0, 1]],
  [-2, u, u, [3, 4]],
  [u, -1, u, [0, 1, 2, 3]],
  [1, 4, u, [1, 2, 3]],
  [30, u, u, []],
  [-30, u, u, [0, 1, 2, 3, 4]],
  [u, -30, u, []],
  [u, u, 2, [0, 2, 4]],
  [1, u, 2, [1, 3]],
  [u, u, -1, [4, 3, 2, 1, 0]],
  [u, u, -2, [4, 2, 0]],
  [3, 0, -1, [3, 2, 1]],
  [-1, -4, -1, [4, 3, 2]],
  [5, 1, -2, [4, 2]],
  [0, 5, -1, []],
  [10, u, -1, [4, 3, 2, 1, 0]],
  [u, -10, -1, [4, 3, 2, 1, 0]],
  [-100, 100, 3, [0, 3]],
  [4, 2, u, []],
  [2, 2, u, []],
];

describe("layer slices follow Python", () => {
  for (const [start, stop, step, want] of PYTHON) {
    it(`[${start ?? ""}:${stop ?? ""}:${step ?? ""}] over 5 layers`, () => {
      expect(sliceIndices(sl(start, stop, step), 5)).toEqual(want);
    });
  }
  it("single indices, negatives from the end, out of range empty", () => {
    const idx = (index: number): LayerSlice => ({ kind: "index", index, span });
    expect(sliceIndices(idx(0), 5)).toEqual([0]);
    expect(sliceIndices(idx(-1), 5)).toEqual([4]);
    expect(sliceIndices(idx(-5), 5)).toEqual([0]);
    expect(sliceIndices(idx(-6), 5)).toEqual([]);
    expect(sliceIndices(idx(5), 5)).toEqual([]);
  });
  it("a zero step is invalid", () => {
    expect(sliceIndices(sl(u, u, 0), 5)).toBe("the step cannot be zero");
  });
  it("prints as written", () => {
    expect(sliceText(sl(30))).toBe("[30:]");
    expect(sliceText(sl(u, u, 2))).toBe("[::2]");
    expect(sliceText(sl(1, -1))).toBe("[1:-1]");
    expect(sliceText({ kind: "index", index: -2, span })).toBe("[-2]");
    expect(slicesText([{ kind: "index", index: 0, span }, sl(3, 5)])).toBe("[0, 3:5]");
  });
});
