import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { loadDataset, DataError, type DataStats } from "../../src/runtime/data/index.js";
import { UserError } from "../../src/runtime/io/errors.js";
import { ByteTokenizer } from "../../src/runtime/tokenizer/index.js";
import { CHATGLM2, byteIds, dataSpec, tempDir } from "./helpers.js";
import type { DataSpec } from "../../src/check/spec.js";

const tokenizer = new ByteTokenizer();
const load = (dir: string, spec: DataSpec, template = CHATGLM2) => loadDataset(spec, { baseDir: dir, tokenizer, template, vocabSize: 259 });

async function failure(p: Promise<unknown>): Promise<DataError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return e as DataError;
  }
  throw new Error("expected a failure");
}

/** Ids of one chatglm2-templated record, from UTF-8 bytes. */
function expected(ask: string, answer: string): { ids: number[]; labels: number[] } {
  const a = [1, ...byteIds(`[Round 1]\n\n问：${ask}\n\n答：`)];
  const b = [...byteIds(answer), 2];
  return { ids: [...a, ...b], labels: [...a.map(() => -100), ...b] };
}

const ROWS = [
  ["感冒了怎么办？", "多喝水，注意休息。"],
  ['He said "hi", then left', "ok\nfine"],
];

describe("loadDataset: the three formats give the same examples", () => {
  const jsonl = ROWS.map(([ask, answer]) => JSON.stringify({ ask, answer, department: "内科" })).join("\n") + "\n";
  const json = "[\n" + ROWS.map(([ask, answer]) => "  " + JSON.stringify({ ask, answer })).join(",\n") + "\n]\n";
  const csvCell = (s: string) => `"${s.replace(/"/g, '""')}"`;
  const csv = "ask,answer\r\n" + ROWS.map(([ask, answer]) => `${csvCell(ask!)},${csvCell(answer!)}`).join("\r\n") + "\r\n";
  const dir = tempDir({ "train.jsonl": jsonl, "train.json": json, "train.csv": csv });

  for (const [file, lines] of [["train.jsonl", [1, 2]], ["train.json", [2, 3]], ["train.csv", [2, 3]]] as const) {
    it(file, async () => {
      const { examples, stats } = await load(dir, dataSpec({ file }));
      expect(examples.map((e) => e.source)).toEqual(lines.map((line) => ({ file, line })));
      examples.forEach((e, i) => {
        const x = expected(ROWS[i]![0]!, ROWS[i]![1]!);
        expect(Array.from(e.inputIds)).toEqual(x.ids);
        expect(Array.from(e.labels)).toEqual(x.labels);
      });
      const tokens = ROWS.reduce((s, [a, b]) => s + expected(a!, b!).ids.length, 0);
      expect(stats).toMatchObject({ file, records: 2, examples: 2, skipped: 0, empty: 0, tokens, labelTokens: byteIds(ROWS[0]![1]!).length + byteIds(ROWS[1]![1]!).length + 2 });
    });
  }
});

describe("loadDataset: bad records", () => {
  const lines = [
    '{"ask": "a1", "answer": "b1"}',
    '{"ask": "a2", "answer": "b2",}',
    '{"question": "a3", "answer": "b3"}',
    '{"ask": "a4", "answer": 5}',
    '{"ask": "", "answer": "b5"}',
    '{"ask": "a6", "answer": null}',
    '{"ask": "a7", "answer": "b7"}',
  ];
  const dir = tempDir({ "train.jsonl": lines.join("\n"), "all-bad.jsonl": '{"q": 1}\n{"q": 2}\n' });

  it("fail: bad JSON names file:line:column and says what to do", async () => {
    const e = await failure(load(dir, dataSpec()));
    expect(e.code).toBe("P603");
    expect(e.line).toBe(2);
    expect(e.message).toMatch(/^train\.jsonl:2:30: bad JSON: .*; fix the line, or set `on_error = skip`/);
  });

  it("fail: a missing field lists the fields the record has", async () => {
    const e = await failure(load(tempDir({ "train.jsonl": lines[0] + "\n" + lines[2] }), dataSpec()));
    expect(e.code).toBe("P602");
    expect(e.message).toMatch(/^train\.jsonl:2: record has no field 'ask'; fields seen: question, answer; map the prompt/);
  });

  it("fail: a wrong type names the field", async () => {
    const e = await failure(load(tempDir({ "train.jsonl": lines[3]! }), dataSpec()));
    expect(e.message).toMatch(/^train\.jsonl:1: field 'answer' is a number; expected a string/);
  });

  it("skip: bad records are skipped and counted; empty prompts/responses are dropped as the recipe drops them", async () => {
    const { examples, stats } = await load(dir, dataSpec({ onError: "skip" }));
    expect(examples.map((e) => e.source.line)).toEqual([1, 7]);
    expect(stats).toMatchObject({ records: 7, examples: 2, skipped: 3, empty: 2 });
    expect(stats.skipReasons).toHaveLength(3);
    expect(stats.skipReasons[0]).toMatch(/^train\.jsonl:2:30: bad JSON/);
    expect(stats.skipReasons[1]).toMatch(/^train\.jsonl:3: record has no field 'ask'/);
    expect(stats.skipReasons[2]).toMatch(/^train\.jsonl:4: field 'answer' is a number/);
  });

  it("skip: when every record is bad, the mapping is wrong and the first reason is an error", async () => {
    const e = await failure(load(dir, dataSpec({ file: "all-bad.jsonl", onError: "skip" })));
    expect(e.message).toMatch(/^all-bad\.jsonl:1: record has no field 'ask'; fields seen: q;/);
  });

  it("a JSON array's bad element names its index and line", async () => {
    const d = tempDir({ "t.json": '[\n {"ask": "a", "answer": "b"},\n {"ask": "a", "answer": ["b"]}\n]' });
    const e = await failure(load(d, dataSpec({ file: "t.json" })));
    expect(e.message).toMatch(/^t\.json:3: field 'answer' is an array; expected a string/);
    const d2 = tempDir({ "t.json": '[\n {"ask": "a", "answer": "b"},\n 12\n]' });
    expect((await failure(load(d2, dataSpec({ file: "t.json" })))).message).toMatch(/^t\.json:3: record 1 is a number, not an object/);
  });

  it("a missing file is P601; an unknown extension is P605", async () => {
    const e = await failure(load(dir, dataSpec({ file: "nope.jsonl" })));
    expect(e.code).toBe("P601");
    expect(e.message).toMatch(/^data file nope\.jsonl not found; looked for /);
    expect((await failure(load(dir, dataSpec({ file: "x.txt" })))).code).toBe("P605");
  });
});

describe("loadDataset: system and history fields", () => {
  it("CSV history cells hold JSON pairs; the system text goes first", async () => {
    const csv = 'sys,q,a,h\n"Be brief",q2,a2,"[[""q1"",""a1""]]"\n,q3,a3,\n';
    const dir = tempDir({ "t.csv": csv });
    const spec = dataSpec({ file: "t.csv", fields: { prompt: "q", response: "a", system: "sys", history: "h" } });
    const { examples } = await load(dir, spec, "[Round {round}]\n\n问：{prompt}\n\n答：");
    const first = [1, ...byteIds("Be brief\n\n[Round 1]\n\n问：q1\n\n答：a1\n\n[Round 2]\n\n问：q2\n\n答："), ...byteIds("a2"), 2];
    expect(Array.from(examples[0]!.inputIds)).toEqual(first);
    expect(Array.from(examples[1]!.inputIds)).toEqual([1, ...byteIds("[Round 1]\n\n问：q3\n\n答："), ...byteIds("a3"), 2]);
    const bad = tempDir({ "t.jsonl": '{"q": "x", "a": "y", "h": [["only one"]]}' });
    const e = await failure(load(bad, dataSpec({ file: "t.jsonl", fields: { prompt: "q", response: "a", history: "h" } })));
    expect(e.message).toMatch(/^t\.jsonl:1: field 'h' must be a list of \[prompt, response\] pairs; item 0 is an array of length 1/);
  });
});

describe("loadDataset: truncation statistics", () => {
  it("counts truncated prompts and responses and their shares", async () => {
    const recs = [
      { ask: "短", answer: "短" },
      { ask: "这是一个很长很长的问题", answer: "短" },
      { ask: "短", answer: "这是一个很长很长的回答" },
      { ask: "这是一个很长很长的问题", answer: "这是一个很长很长的回答" },
    ];
    const dir = tempDir({ "train.jsonl": recs.map((r) => JSON.stringify(r)).join("\n") });
    const maxSource = 1 + byteIds("[Round 1]\n\n问：短短\n\n答：").length;
    const { stats } = await load(dir, dataSpec({ lengths: { maxSource, maxTarget: 6 } }));
    expect(stats).toMatchObject({ examples: 4, truncatedPrompts: 2, truncatedResponses: 2, truncatedPromptShare: 0.5, truncatedResponseShare: 0.5 });
    // Longest: a full prompt budget + 6 response bytes + eos.
    expect(stats.longest).toBe(maxSource + 6 + 1);
  });
});

describe("loadDataset: pre-tokenized records", () => {
  const spec = (over: Partial<DataSpec> = {}) => dataSpec({ file: "t.jsonl", mode: "tokenized", fields: {}, ...over });

  it("default labels are the inputs; given labels are kept; long sequences are cut", async () => {
    const dir = tempDir({ "t.jsonl": '{"input_ids": [1, 5, 6, 2]}\n{"input_ids": [1, 7, 8, 9, 2], "labels": [-100, -100, 8, 9, 2]}\n' });
    const { examples, stats } = await load(dir, spec());
    expect(Array.from(examples[0]!.inputIds)).toEqual([1, 5, 6, 2]);
    expect(Array.from(examples[0]!.labels)).toEqual([1, 5, 6, 2]);
    expect(Array.from(examples[1]!.labels)).toEqual([-100, -100, 8, 9, 2]);
    expect(stats).toMatchObject({ examples: 2, tokens: 9, labelTokens: 7, truncatedSequences: 0 });
    const cut = await load(dir, spec({ lengths: { maxLength: 3 }, truncation: "left" }));
    expect(Array.from(cut.examples[1]!.inputIds)).toEqual([8, 9, 2]);
    expect(Array.from(cut.examples[1]!.labels)).toEqual([8, 9, 2]);
    expect(cut.stats.truncatedSequences).toBe(2);
  });

  it("rejects out-of-vocabulary ids, bad labels and a length mismatch with file:line", async () => {
    const cases: [string, RegExp][] = [
      ['{"input_ids": [1, 259]}', /^t\.jsonl:1: input_ids\[1\]: 259 is outside the vocabulary \[0, 259\); re-tokenize/],
      ['{"input_ids": [1, -100]}', /^t\.jsonl:1: input_ids\[1\]: -100 is outside the vocabulary/],
      ['{"input_ids": [1, 2.5]}', /^t\.jsonl:1: input_ids\[1\]: 2\.5 is not an integer/],
      ['{"input_ids": "1 2"}', /^t\.jsonl:1: field 'input_ids' is a string; expected a list of token ids/],
      ['{"input_ids": [1, 2], "labels": [1, -5]}', /^t\.jsonl:1: labels\[1\]: -5 is outside the vocabulary \[0, 259\); labels are ids or -100/],
      ['{"input_ids": [1, 2], "labels": [1]}', /^t\.jsonl:1: labels has 1 entries but input_ids has 2/],
      ['{"input_ids": []}', /^t\.jsonl:1: input_ids is empty/],
      ['{"ids": [1]}', /^t\.jsonl:1: record has no field 'input_ids'; fields seen: ids/],
    ];
    for (const [line, re] of cases) expect((await failure(load(tempDir({ "t.jsonl": line }), spec()))).message).toMatch(re);
  });
});

describe("the medical data set", () => {
  const file = "../shared/data/medical/train.jsonl";
  const text = readFileSync(file, "utf8");
  const records = text.split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l) as { ask: string; answer: string });

  it("reads every line without errors; stats match an independent count", async () => {
    const maxSource = 128;
    const maxTarget = 256;
    const spec = dataSpec({ file: "data/medical/train.jsonl", lengths: { maxSource, maxTarget } });
    const { examples, stats }: { examples: unknown[]; stats: DataStats } = await loadDataset(spec, { baseDir: "../shared", tokenizer, template: CHATGLM2, vocabSize: 259 });
    expect(records.length).toBe(3721);
    expect(stats).toMatchObject({ records: 3721, examples: 3721, skipped: 0, empty: 0 });
    expect(examples).toHaveLength(3721);
    let tokens = 0;
    let prompts = 0;
    let responses = 0;
    for (const r of records) {
      const a = 1 + Buffer.byteLength(`[Round 1]\n\n问：${r.ask}\n\n答：`);
      const b = Buffer.byteLength(r.answer);
      if (a > maxSource) prompts++;
      if (b > maxTarget) responses++;
      tokens += Math.min(a, maxSource) + Math.min(b, maxTarget) + 1;
    }
    expect(stats.truncatedPrompts).toBe(prompts);
    expect(stats.truncatedResponses).toBe(responses);
    expect(stats.tokens).toBe(tokens);
    expect(stats.longest).toBeLessThanOrEqual(maxSource + maxTarget + 1);
    expect(stats.truncatedPromptShare).toBeCloseTo(prompts / 3721, 12);
  });
});
