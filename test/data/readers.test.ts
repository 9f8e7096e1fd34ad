import { describe, expect, it } from "vitest";
import { readCsv, parseRows } from "../../src/runtime/data/csv.js";
import { readJsonArray } from "../../src/runtime/data/json-array.js";
import { readJsonLines } from "../../src/runtime/data/jsonl.js";
import { DataError } from "../../src/runtime/data/errors.js";
import { formatOf } from "../../src/runtime/data/read-file.js";

function thrown(f: () => unknown): Error {
  try {
    f();
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected a throw");
}

describe("JSON lines", () => {
  it("reads one object per line, skips blank lines, keeps line numbers", () => {
    const recs = readJsonLines('{"a":1}\n\n  \r\n{"a":"二"}\r\n{"a":3}');
    expect(recs).toEqual([
      { ok: true, fields: { a: 1 }, line: 1, index: 0 },
      { ok: true, fields: { a: "二" }, line: 4, index: 1 },
      { ok: true, fields: { a: 3 }, line: 5, index: 2 },
    ]);
  });

  it("reports bad JSON and non-objects with their line and column", () => {
    const recs = readJsonLines('{"a":1}\n{"a":1,}\n[1,2]\n"x"');
    expect(recs[1]).toMatchObject({ ok: false, line: 2, column: 8 });
    expect(recs[1]!.ok === false && recs[1]!.message).toMatch(/^bad JSON: \S/);
    expect(recs[1]!.ok === false && recs[1]!.message).not.toMatch(/position/);
    expect(recs[2]).toMatchObject({ ok: false, line: 3, message: "the line is an array, not a JSON object" });
    expect(recs[3]).toMatchObject({ ok: false, line: 4, message: "the line is a string, not a JSON object" });
  });
});

describe("JSON array", () => {
  it("reads the elements with the line each starts on", () => {
    const text = '[\n  {"q": "a, ]}", "r": [1, {"x": "}"}]},\n  {"q": "b\\"c"}\n,{"q":"d"}]\n';
    const recs = readJsonArray(text, "d.json");
    expect(recs.map((r) => [r.ok, r.line, r.index])).toEqual([[true, 2, 0], [true, 3, 1], [true, 4, 2]]);
    expect(recs[0]!.ok && recs[0]!.fields).toEqual({ q: "a, ]}", r: [1, { x: "}" }] });
    expect(recs[1]!.ok && recs[1]!.fields).toEqual({ q: 'b"c' });
    expect(readJsonArray(" [ ] ", "d.json")).toEqual([]);
  });

  it("names the record index and line of a bad element", () => {
    const recs = readJsonArray('[{"q":1},\n\n {"q": 2,\n  "r" 3},\n 7]', "d.json");
    // The error is at the 3 on line 4, column 7 (V8's wording of it varies by version).
    expect(recs[1]).toMatchObject({ ok: false, index: 1, line: 4, column: 7 });
    expect(recs[1]!.ok === false && recs[1]!.message).toMatch(/^record 1: bad JSON: \S/);
    expect(recs[2]).toMatchObject({ ok: false, index: 2, line: 5, message: "record 2 is a number, not an object" });
  });

  it("fails on a broken outer structure with file:line", () => {
    const e1 = thrown(() => readJsonArray('{"q": 1}', "d.json"));
    expect(e1).toBeInstanceOf(DataError);
    expect(e1.message).toMatch(/^d\.json:1:1: a \.json data file must hold one array of records/);
    expect(thrown(() => readJsonArray('[{"q": 1},\n{"q": "x', "d.json")).message).toMatch(/^d\.json:2:1: record 1 is not closed/);
    expect(thrown(() => readJsonArray('[{"q": 1}\n {"q": 2}]', "d.json")).message).toMatch(/^d\.json:2:2: expected , or \] after record 0/);
    expect(thrown(() => readJsonArray('[{"q": 1}] x', "d.json")).message).toMatch(/^d\.json:1:12: unexpected text after the closing \]/);
  });
});

describe("CSV (RFC 4180)", () => {
  it("parses quoted fields, doubled quotes, commas and line breaks inside quotes, CRLF", () => {
    const text = 'q,r\r\n"a, b","say ""hi"""\r\n"line1\nline2",plain\r\n,\r\nlast,"x"';
    const recs = readCsv(text, "d.csv");
    expect(recs).toEqual([
      { ok: true, fields: { q: "a, b", r: 'say "hi"' }, line: 2, index: 0 },
      { ok: true, fields: { q: "line1\nline2", r: "plain" }, line: 3, index: 1 },
      { ok: true, fields: { q: "", r: "" }, line: 5, index: 2 },
      { ok: true, fields: { q: "last", r: "x" }, line: 6, index: 3 },
    ]);
  });

  it("drops a BOM, skips empty lines, keeps a trailing empty field", () => {
    expect(parseRows("\ufeffa,b\n\n1,\n", "d.csv").map((r) => r.values)).toEqual([["\ufeffa", "b"], ["1", ""]]);
    const recs = readCsv("\ufeffa,b\n\n1,\n\n", "d.csv");
    expect(recs).toEqual([{ ok: true, fields: { a: "1", b: "" }, line: 3, index: 0 }]);
    expect(readCsv("", "d.csv")).toEqual([]);
    expect(readCsv("a,b\n", "d.csv")).toEqual([]);
  });

  it("reports bad rows with line and column, and resynchronises on the next line", () => {
    const recs = readCsv('q,r\nab"c,d\n"x"y,z\n1,2,3\nok,fine', "d.csv");
    expect(recs[0]).toMatchObject({ ok: false, line: 2, column: 3 });
    expect(recs[0]!.ok === false && recs[0]!.message).toMatch(/quote inside an unquoted field/);
    expect(recs[1]).toMatchObject({ ok: false, line: 3, column: 4 });
    expect(recs[1]!.ok === false && recs[1]!.message).toMatch(/text after the closing quote/);
    expect(recs[2]).toMatchObject({ ok: false, line: 4, message: "the row has 3 fields but the header has 2" });
    expect(recs[3]).toMatchObject({ ok: true, fields: { q: "ok", r: "fine" }, line: 5 });
  });

  it("counts lines inside quoted fields for later records", () => {
    const recs = readCsv('q,r\n"a\n\nb",1\nc,"2\r\n3"\nd,4', "d.csv");
    expect(recs.map((r) => r.line)).toEqual([2, 5, 7]);
    expect(recs[1]!.ok && recs[1]!.fields.r).toBe("2\r\n3");
  });

  it("fails on an unclosed quote and on duplicate header names", () => {
    expect(thrown(() => readCsv('q,r\n1,"abc\n2,3\n', "d.csv")).message).toMatch(/^d\.csv:2:3: a quoted field is never closed/);
    expect(thrown(() => readCsv("q,q\n1,2", "d.csv")).message).toMatch(/^d\.csv:1: the header names the column 'q' twice/);
  });
});

describe("format", () => {
  it("follows the extension unless given, and fails with P605 otherwise", () => {
    expect(formatOf("a/b.JSONL")).toBe("jsonl");
    expect(formatOf("b.json")).toBe("json");
    expect(formatOf("b.csv")).toBe("csv");
    expect(formatOf("b.txt", "jsonl")).toBe("jsonl");
    const e = thrown(() => formatOf("b.txt"));
    expect(e).toBeInstanceOf(DataError);
    expect((e as DataError).code).toBe("P605");
    expect(e.message).toBe("cannot tell the format of b.txt; add `format = jsonl;` (or json, csv)");
  });
});
