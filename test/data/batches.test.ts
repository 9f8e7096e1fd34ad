import { describe, expect, it } from "vitest";
import { epochOrder, holdOut, makeBatches, type Example } from "../../src/runtime/data/index.js";
import { UserError } from "../../src/runtime/io/errors.js";

const ex = (ids: number[], labels: number[], line: number): Example => ({
  inputIds: Int32Array.from(ids),
  labels: Int32Array.from(labels),
  source: { file: "t.jsonl", line },
});

const examples = [
  ex([1, 10, 11], [-100, -100, 11], 1),
  ex([1, 20, 21, 22, 2], [-100, 20, 21, 22, 2], 2),
  ex([1, 30], [1, 30], 3),
];

describe("makeBatches: padding", () => {
  it("pads each batch to its longest example: pad id, -100 labels, 0 mask", () => {
    const [b] = makeBatches(examples, { batch: 3, seed: 0, shuffle: false, epoch: 0 });
    expect(b!.size).toBe(3);
    expect(b!.length).toBe(5);
    expect(Array.from(b!.inputIds)).toEqual([1, 10, 11, 0, 0, 1, 20, 21, 22, 2, 1, 30, 0, 0, 0]);
    expect(Array.from(b!.labels)).toEqual([-100, -100, 11, -100, -100, -100, 20, 21, 22, 2, 1, 30, -100, -100, -100]);
    expect(Array.from(b!.attentionMask)).toEqual([1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0]);
    expect(b!.tokens).toBe(10);
    expect(b!.labelTokens).toBe(1 + 4 + 2);
    // Position 0 is never a target of a shifted causal loss: the label 1 of row 3 does not count.
    expect(b!.lossTokens).toBe(1 + 4 + 1);
    expect(b!.sources.map((s) => s.line)).toEqual([1, 2, 3]);
  });

  it("uses the given pad id, keeps a short last batch unless dropLast", () => {
    const bs = makeBatches(examples, { batch: 2, seed: 0, shuffle: false, epoch: 0, padId: 7 });
    expect(bs.map((b) => [b.size, b.length])).toEqual([[2, 5], [1, 2]]);
    expect(Array.from(bs[0]!.inputIds.subarray(0, 5))).toEqual([1, 10, 11, 7, 7]);
    expect(Array.from(bs[1]!.inputIds)).toEqual([1, 30]);
    expect(makeBatches(examples, { batch: 2, seed: 0, shuffle: false, epoch: 0, dropLast: true })).toHaveLength(1);
    expect(() => makeBatches(examples, { batch: 0, seed: 0, shuffle: false, epoch: 0 })).toThrow(/positive integer/);
  });
});

// The documented generator, written out again from the header of order.ts.
function mix32(x: number): number {
  x >>>= 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x21f0aaad);
  x ^= x >>> 15;
  x = Math.imul(x, 0x735a2d97);
  x ^= x >>> 15;
  return x >>> 0;
}
function oracleOrder(n: number, seed: number, epoch: number): number[] {
  const key = mix32(((seed ^ 0x64617461) >>> 0) ^ mix32((epoch + 0x9e3779b9) >>> 0));
  const p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i >= 1; i--) {
    const r = mix32((mix32(((n - 1 - i) ^ key) >>> 0) + key) >>> 0);
    const j = Math.floor((r * (i + 1)) / 2 ** 32);
    [p[i], p[j]] = [p[j]!, p[i]!];
  }
  return p;
}

describe("makeBatches: deterministic shuffling", () => {
  it("follows the documented Fisher-Yates over the counter-based generator", () => {
    for (const [n, seed, epoch] of [[10, 42, 0], [10, 42, 3], [97, 7, 1]] as const) {
      expect(Array.from(epochOrder(n, seed, epoch))).toEqual(oracleOrder(n, seed, epoch));
    }
  });

  it("same seed and epoch: same order; another epoch or seed: another order; always a permutation", () => {
    const n = 50;
    const a = Array.from(epochOrder(n, 42, 0));
    expect(Array.from(epochOrder(n, 42, 0))).toEqual(a);
    expect(Array.from(epochOrder(n, 42, 1))).not.toEqual(a);
    expect(Array.from(epochOrder(n, 43, 0))).not.toEqual(a);
    expect([...a].sort((x, y) => x - y)).toEqual(Array.from({ length: n }, (_, i) => i));
  });

  it("batches of a shuffled epoch hold every example once, in the epoch's order", () => {
    const many = Array.from({ length: 23 }, (_, i) => ex([1, i + 3], [-100, i + 3], i + 1));
    const bs = makeBatches(many, { batch: 4, seed: 5, shuffle: true, epoch: 2 });
    const lines = bs.flatMap((b) => b.sources.map((s) => s.line));
    expect(lines).toEqual(Array.from(epochOrder(23, 5, 2), (i) => i + 1));
    expect(makeBatches(many, { batch: 4, seed: 5, shuffle: true, epoch: 2 }).map((b) => Array.from(b.inputIds))).toEqual(bs.map((b) => Array.from(b.inputIds)));
  });
});

describe("holdOut", () => {
  const many = Array.from({ length: 10 }, (_, i) => ex([1, i + 3], [-100, i + 3], i + 1));

  it("takes ceil(share * n) or a count, seeded, both sides in file order", () => {
    const { train, eval: ev } = holdOut(many, { share: 0.25 }, 42);
    expect(ev).toHaveLength(3);
    expect(train).toHaveLength(7);
    const lines = (xs: Example[]) => xs.map((e) => e.source.line);
    expect([...lines(train), ...lines(ev)].sort((a, b) => a - b)).toEqual(lines(many));
    expect(lines(ev)).toEqual([...lines(ev)].sort((a, b) => a - b));
    expect(lines(holdOut(many, { share: 0.25 }, 42).eval)).toEqual(lines(ev));
    expect(holdOut(many, { count: 4 }, 42).eval).toHaveLength(4);
    // Another seed chooses other records.
    expect(lines(holdOut(many, { count: 4 }, 1).eval)).not.toEqual(lines(holdOut(many, { count: 4 }, 2).eval));
  });

  it("refuses a split that leaves no train or no eval record", () => {
    expect(() => holdOut(many, { count: 10 }, 0)).toThrow(UserError);
    expect(() => holdOut(many, { count: 10 }, 0)).toThrow(/leaves no train records out of 10/);
    expect(() => holdOut(many, { share: 0 }, 0)).toThrow(/holds out no record/);
  });
});
