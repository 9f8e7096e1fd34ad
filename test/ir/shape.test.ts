import { describe, expect, it } from "vitest";
import { broadcastShapes, dimAdd, dimEq, dimSub, elementKey, isDim, normDim, promote } from "../../src/ir/shape.js";

describe("symbolic dimensions", () => {
  it("spell sums canonically: symbols by name, then the constant", () => {
    expect(normDim("20+T")).toBe("T+20");
    expect(normDim("P+B+T")).toBe("B+P+T");
    expect(normDim("T-T+3")).toBe(3);
    expect(normDim("T+T")).toBe("2*T");
    expect(normDim("-1+T")).toBe("T-1");
    expect(normDim(64)).toBe(64);
  });

  it("add, subtract and compare", () => {
    expect(dimAdd("T", 20)).toBe("T+20");
    expect(dimAdd(0, "T")).toBe("T");
    expect(dimAdd(3, 4)).toBe(7);
    expect(dimSub("T+20", 20)).toBe("T");
    expect(dimSub("T+20", "T")).toBe(20);
    expect(dimEq("T+P", "P+T")).toBe(true);
    expect(dimEq("T+1", "T")).toBe(false);
    expect(dimEq(4, "4")).toBe(true);
    expect(dimEq("B", "T")).toBe(false);
  });

  it("accept only integers and linear sums of symbols", () => {
    for (const ok of [0, 7, "B", "T+20", "2*T-1", "T_2"]) expect(isDim(ok), String(ok)).toBe(true);
    for (const bad of [-1, 1.5, "", "T*T", "T**2", "(T)", "T+", "2T"]) expect(isDim(bad), String(bad)).toBe(false);
  });

  it("count elements as monomials", () => {
    expect(elementKey(["B", "T", 4, 16])).toBe(elementKey([64, "T", "B"]));
    expect(elementKey(["B", "T", 64])).not.toBe(elementKey(["B", 64]));
    expect(elementKey(["B", "T+20", 64])).toBe(elementKey(["B", "20+T", 8, 8]));
    expect(elementKey([])).toBe("1");
  });

  it("broadcast as NumPy does", () => {
    expect(broadcastShapes(["B", "T", 64], [64])).toEqual(["B", "T", 64]);
    expect(broadcastShapes([8, 1], [1, 5])).toEqual([8, 5]);
    expect(broadcastShapes([], [3])).toEqual([3]);
    expect(broadcastShapes([2, 3], [3, 3])).toBe("cannot broadcast [2,3] with [3,3]");
  });

  it("promote mixed float storage to f32", () => {
    expect(promote("f16", "f16")).toBe("f16");
    expect(promote("f32", "f16")).toBe("f32");
  });
});
