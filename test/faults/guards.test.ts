/**
 * The guards the fault suite (npm run faults) found missing, each on its smallest case: bracket
 * nesting and token count bounds in the parser, non-UTF-8 data lines as bad records, the stop for
 * non-finite numbers.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { checkSource } from "../../src/frontend.js";
import { readRecords } from "../../src/runtime/data/read-file.js";
import { nonFiniteOutcome, nonFiniteValue } from "../../src/runtime/train/finite.js";

const dir = mkdtempSync(join(tmpdir(), "pefc-guards-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("parser bounds", () => {
  it("nesting 20,000 braces deep is P207 at the 33rd brace, not a stack overflow", () => {
    const src = 'model "builtin:tiny-llama";\nmam ' + "{".repeat(20_000);
    const res = checkSource(src, "deep.peft");
    const d = res.diagnostics.find((x) => x.code === "P207");
    expect(d?.span).toMatchObject({ line: 2, column: 5 + 32 });
    expect(res.ok).toBe(false);
  });

  it("a file of 100,000 stray tokens is P208 and checks in bounded time", () => {
    const src = 'model "builtin:tiny-llama";\n' + '"x" '.repeat(100_000);
    const t0 = performance.now();
    const res = checkSource(src, "long.peft");
    expect(performance.now() - t0).toBeLessThan(20_000);
    expect(res.diagnostics.some((x) => x.code === "P208" && x.span?.line === 2)).toBe(true);
  });

  it("spans after many lines still land on the right line and column", () => {
    const src = "\n".repeat(5000) + "lora r=8 on ;";
    const d = checkSource(src, "far.peft", { fragment: true }).diagnostics.find((x) => x.code === "P201");
    expect(d?.span?.line).toBe(5001);
  });
});

describe("data files that are not all UTF-8", () => {
  const bytes = Buffer.concat([Buffer.from('{"a": "ok"}\n{"a": "b'), Buffer.from([0xc3, 0x28]), Buffer.from('"}\n{"a": "é"}\n')]);

  it("a JSON lines file: the bad line alone is a bad record at line:col", async () => {
    writeFileSync(join(dir, "d.jsonl"), bytes);
    const recs = await readRecords(dir, "d.jsonl");
    expect(recs.map((r) => r.ok)).toEqual([true, false, true]);
    expect(recs[1]).toMatchObject({ ok: false, line: 2, column: 9 });
    expect(recs[2]).toMatchObject({ ok: true, fields: { a: "é" } });
  });

  it("a CSV file: an error naming file:line:col", async () => {
    writeFileSync(join(dir, "d.csv"), Buffer.concat([Buffer.from("a,b\nx,"), Buffer.from([0xff]), Buffer.from("\n")]));
    await expect(readRecords(dir, "d.csv")).rejects.toThrow(/d\.csv:2:3: not valid UTF-8/);
  });
});

describe("non-finite numbers", () => {
  it("names what is not finite", () => {
    expect(nonFiniteOutcome({ loss: 1.5 })).toBeUndefined();
    expect(nonFiniteOutcome({ loss: Number.NaN })).toBe("loss is NaN");
    expect(nonFiniteOutcome({ loss: 2, gradNorm: Number.POSITIVE_INFINITY })).toBe("gradient norm is +Inf");
    expect(nonFiniteValue(new Map([["w", Float32Array.from([1, 2])], ["v", Float32Array.from([0, Number.NEGATIVE_INFINITY])]]))).toBe("parameter v holds -Inf (element 1)");
  });
});
