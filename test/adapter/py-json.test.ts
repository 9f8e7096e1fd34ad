/** Python's json.dumps(indent=2, sort_keys=True) and repr(float), against outputs of CPython 3. */
import { describe, expect, it } from "vitest";
import { pyFloat, pyFloatRepr, pyJsonDumps } from "../../src/runtime/adapter/index.js";

describe("repr(float)", () => {
  const cases: [number, string][] = [
    [0, "0.0"], [-0, "-0.0"], [0.01, "0.01"], [0.85, "0.85"], [1e-5, "1e-05"], [0.0001, "0.0001"], [2.5e-7, "2.5e-07"],
    [100, "100.0"], [1e16, "1e+16"], [1234567890123456, "1234567890123456.0"], [0.1 + 0.2, "0.30000000000000004"],
    [1.5e300, "1.5e+300"], [-3.25, "-3.25"], [123.456, "123.456"], [5e-324, "5e-324"],
  ];
  for (const [x, want] of cases) it(`${want}`, () => expect(pyFloatRepr(x)).toBe(want));
});

describe("json.dumps(indent=2, sort_keys=True)", () => {
  it("nests, sorts by code point, writes empty containers inline and no trailing newline", () => {
    const text = pyJsonDumps({ b: [], a: {}, Z: [1, pyFloat(2), [true, null]], "é": "x" });
    expect(text).toBe('{\n  "Z": [\n    1,\n    2.0,\n    [\n      true,\n      null\n    ]\n  ],\n  "a": {},\n  "b": [],\n  "\\u00e9": "x"\n}');
  });

  it("escapes as ensure_ascii does", () => {
    expect(pyJsonDumps("a\"b\\c\n\t\u0001é😀\u007f")).toBe('"a\\"b\\\\c\\n\\t\\u0001\\u00e9\\ud83d\\ude00\\u007f"');
  });

  it("refuses a non-integer that is not marked as a float", () => {
    expect(() => pyJsonDumps({ x: 0.5 })).toThrow(/pyFloat/);
  });
});
