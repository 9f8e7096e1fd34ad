/**
 * Family "data": damaged data files loaded as `pefc run` loads them (prepareSession, in-process,
 * on the builtin tiny model). Each bad record must fail naming file:line (and the column where
 * one is known) or, under `on_error = skip`, be skipped and counted; whole-file faults (empty,
 * not UTF-8, one 50 MB line) must end in a message naming the file within the time limit.
 * Then random damage to the lines of a real data file, at volume.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { DiagnosticsError, formatDiagnostic } from "../src/diagnostics/index.js";
import { isUserError } from "../src/runtime/io/errors.js";
import { prepareSession, type Session } from "../src/runtime/train/session.js";
import { int, pick, rng, caseSeed } from "./lib/rng.js";
import { randomSeed, type FaultOptions } from "./lib/options.js";
import { CaseFailure, expectThat, Tally } from "./lib/tally.js";

const MEDICAL = readFileSync(resolve("examples/data/medical.jsonl"), "utf8").split("\n").filter((l) => l.trim() !== "");
const CASE_LIMIT_MS = 60_000;

const spec = (file: string, extra = "", fields = "prompt = ask; response = answer;") => `model "builtin:tiny-chatglm2";
data train "${file}" { ${fields} max_source = 32; max_target = 32; ${extra} }
lora r=2 alpha=4 on query_key_value;
train { steps = 1; batch = 2; lr = 1e-3; }
`;

type Outcome = { ok: true; session: Session } | { ok: false; message: string };

async function load(dir: string, data: string | Uint8Array, dataName: string, specText: string): Promise<Outcome> {
  writeFileSync(join(dir, dataName), data);
  const file = join(dir, "run.peft");
  writeFileSync(file, specText);
  try {
    return { ok: true, session: await prepareSession(new TextEncoder().encode(specText), file) };
  } catch (e) {
    if (e instanceof DiagnosticsError) return { ok: false, message: e.diagnostics.map(formatDiagnostic).join("\n") };
    if (isUserError(e)) return { ok: false, message: (e as Error).message };
    throw e;
  }
}

interface DataCase {
  name: string;
  file?: string;
  data: () => string | Uint8Array;
  extra?: string;
  fields?: string;
  /** What must happen: an error whose message contains each string, or a load with these counts. */
  expect: { error: string[] } | { skipped?: number; examples?: number; truncated?: boolean };
}

const good = (n: number) => MEDICAL.slice(0, n).join("\n") + "\n";
const withLine = (k: number, line: string) => {
  const lines = MEDICAL.slice(0, 10);
  lines.splice(k - 1, 0, line);
  return lines.join("\n") + "\n";
};
const bytesWithLine = (k: number, line: Uint8Array) => {
  const enc = new TextEncoder();
  const before = enc.encode(MEDICAL.slice(0, k - 1).join("\n") + "\n");
  const after = enc.encode("\n" + MEDICAL.slice(k - 1, 10).join("\n") + "\n");
  return Buffer.concat([before, line, after]);
};
const BIG = 50 * 1024 * 1024;

const CASES: DataCase[] = [
  { name: "intact file", data: () => good(10), expect: { examples: 10, skipped: 0 } },
  { name: "invalid JSON on line 4", data: () => withLine(4, '{"ask": "q", "answer": }'), expect: { error: ["d.jsonl:4:"] } },
  { name: "invalid JSON on line 4, skipped", data: () => withLine(4, '{"ask": "q", "answer": }'), extra: "on_error = skip;", expect: { skipped: 1, examples: 10 } },
  { name: "a line that is an array", data: () => withLine(3, "[1, 2, 3]"), expect: { error: ["d.jsonl:3", "not a JSON object"] } },
  { name: "a line that is null", data: () => withLine(2, "null"), expect: { error: ["d.jsonl:2"] } },
  { name: "missing response field on line 5", data: () => withLine(5, '{"ask": "only a question"}'), expect: { error: ["d.jsonl:5", "answer"] } },
  { name: "missing field, skipped", data: () => withLine(5, '{"ask": "only a question"}'), extra: "on_error = skip;", expect: { skipped: 1, examples: 10 } },
  { name: "a number where text belongs", data: () => withLine(6, '{"ask": 42, "answer": "x"}'), expect: { error: ["d.jsonl:6", "ask"] } },
  { name: "non-UTF-8 bytes on line 3", data: () => bytesWithLine(3, Buffer.from([0x7b, 0x22, 0x61, 0x73, 0x6b, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d])), expect: { error: ["d.jsonl:3:", "UTF-8"] } },
  { name: "non-UTF-8 bytes on line 3, skipped", data: () => bytesWithLine(3, Buffer.from([0x7b, 0x22, 0x61, 0x73, 0x6b, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0x22, 0x7d])), extra: "on_error = skip;", expect: { skipped: 1, examples: 10 } },
  { name: "non-UTF-8 in a CSV file", file: "d.csv", fields: "prompt = ask; response = answer;", data: () => Buffer.concat([Buffer.from("ask,answer\nq1,a1\nq2,"), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from("\n")]), expect: { error: ["d.csv:3:", "UTF-8"] } },
  { name: "NUL bytes inside a line", data: () => withLine(2, '{"ask": "a\u0000b", "answer\u0000": "c"}'), expect: { error: ["d.jsonl:2"] } },
  { name: "an empty file", data: () => "", expect: { error: ["d.jsonl", "no usable record"] } },
  { name: "blank lines only", data: () => "\n\n   \n\r\n", expect: { error: ["d.jsonl", "no usable record"] } },
  { name: "every record bad, skip on", data: () => "{\n{\n{\n", extra: "on_error = skip;", expect: { error: ["d.jsonl:1"] } },
  { name: "BOM and CRLF line ends", data: () => "\ufeff" + MEDICAL.slice(0, 4).join("\r\n") + "\r\n", expect: { examples: 4 } },
  { name: "a record longer than the limits is cut and counted", data: () => withLine(2, JSON.stringify({ ask: "问".repeat(5000), answer: "答".repeat(5000) })), expect: { examples: 11, truncated: true } },
  { name: "one 50 MB line (a valid record)", data: () => withLine(3, JSON.stringify({ ask: "q", answer: "x".repeat(BIG) })), expect: { examples: 11, truncated: true } },
  { name: "one 50 MB line of broken JSON", data: () => withLine(3, '{"ask": "' + "y".repeat(BIG)), expect: { error: ["d.jsonl:3"] } },
  { name: "JSON nested 100000 deep", data: () => withLine(2, "[".repeat(100_000) + "]".repeat(100_000)), expect: { error: ["d.jsonl:2"] } },
  { name: "a JSON array file with a bad element", file: "d.json", data: () => `[\n${MEDICAL.slice(0, 3).join(",\n")},\n{"ask": 1,\n]`, expect: { error: ["d.json:"] } },
  { name: "a JSON array file that is an object", file: "d.json", data: () => `{"ask": "q"}`, expect: { error: ["d.json"] } },
  { name: "a CSV with an unclosed quote", file: "d.csv", data: () => 'ask,answer\nq1,a1\n"q2,a2\nq3,a3\n', expect: { error: ["d.csv:"] } },
  { name: "a CSV without the response column", file: "d.csv", data: () => "ask,other\nq1,a1\n", expect: { error: ["d.csv:2", "answer"] } },
  { name: "token ids past the vocabulary", data: () => '{"input_ids": [1, 2, 999999]}\n', fields: "", expect: { error: ["d.jsonl:1", "999999"] } },
  { name: "token ids that are not integers", data: () => '{"input_ids": [1, 2.5, "x"]}\n', fields: "", expect: { error: ["d.jsonl:1"] } },
  { name: "labels of the wrong length", data: () => '{"input_ids": [1, 2, 3], "labels": [1, 2]}\n', fields: "", expect: { error: ["d.jsonl:1", "labels"] } },
  { name: "a tokenized record longer than the limit is cut and counted", data: () => JSON.stringify({ input_ids: Array.from({ length: 5000 }, (_, i) => (i % 200) + 1) }) + "\n", fields: "", expect: { examples: 1, truncated: true } },
  { name: "a data file that does not exist", data: () => "", file: "elsewhere/none.jsonl", expect: { error: ["none.jsonl", "not found"] } },
];

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((_, no) => (timer = setTimeout(() => no(new CaseFailure(`no answer within ${ms / 1000} s`)), ms)))]).finally(() => clearTimeout(timer));
}

async function namedCases(t: Tally, dir: string, verbose: boolean): Promise<void> {
  for (const c of CASES) {
    const name = c.file ?? "d.jsonl";
    await t.case(`data: ${c.name}`, `npm run faults -- --only data (case "${c.name}")`, async () => {
      const dataName = name.includes("/") ? "unused.jsonl" : name;
      const t0 = performance.now();
      const out = await withTimeout(load(dir, c.data(), dataName, spec(name, c.extra ?? "", c.fields ?? "prompt = ask; response = answer;").replace("max_source = 32; max_target = 32;", c.fields === "" ? "max_length = 64;" : "max_source = 32; max_target = 32;")), CASE_LIMIT_MS);
      const ms = performance.now() - t0;
      if (verbose) console.log(`  data "${c.name}" (${ms.toFixed(0)} ms): ${out.ok ? `loaded ${out.session.stats.train.examples}, skipped ${out.session.stats.train.skipped}` : out.message.split("\n")[0]}`);
      if ("error" in c.expect) {
        expectThat(!out.ok, "loaded without an error");
        for (const s of c.expect.error) expectThat(out.message.includes(s), `the message does not name ${s}: ${out.message.slice(0, 300)}`);
        expectThat(!/\n\s+at /.test(out.message), `stack trace: ${out.message}`);
        return;
      }
      expectThat(out.ok, `refused: ${out.ok ? "" : out.message.slice(0, 300)}`);
      const st = out.session.stats.train;
      if (c.expect.examples !== undefined) expectThat(st.examples === c.expect.examples, `${st.examples} examples, expected ${c.expect.examples}`);
      if (c.expect.skipped !== undefined) expectThat(st.skipped === c.expect.skipped, `${st.skipped} skipped, expected ${c.expect.skipped}`);
      if (c.expect.skipped) expectThat(st.skipReasons[0]?.includes(`${name}:`), `skip reason without file:line: ${st.skipReasons[0]}`);
      if (c.expect.truncated) expectThat(st.truncatedResponses + st.truncatedPrompts + st.truncatedSequences > 0, "the long record was not counted as cut");
      if (st.skipped > 0) t.add("skipped and counted", st.skipped);
    });
  }
}

/** Random damage to the lines of examples/data/medical.jsonl; every error names a real line of the file. */
async function mutatedCases(t: Tally, dir: string, seed: number, count: number, only?: number): Promise<void> {
  const one = async (i: number) => {
    const r = rng(caseSeed(seed, i));
    const lines = MEDICAL.slice(0, int(r, 1, 12));
    const damaged = new Set<number>();
    for (let k = int(r, 1, 3); k > 0; k--) {
      const j = int(r, 0, lines.length - 1);
      const s = lines[j]!;
      const at = int(r, 0, s.length);
      const op = pick(r, ["cut", "delete", "insert", "swap-quote", "nul"] as const);
      lines[j] = op === "cut" ? s.slice(0, at) : op === "delete" ? s.slice(0, at) + s.slice(at + int(r, 1, 10)) : op === "insert" ? s.slice(0, at) + pick(r, ['"', "{", "}", ",", ":", "\\", "\u0000", "1e999", "null"]) + s.slice(at) : op === "nul" ? s.slice(0, at) + "\u0000" + s.slice(at) : s.replace('"', "'");
      damaged.add(j + 1);
    }
    const skip = r() < 0.5;
    await t.case(`data seed ${seed} case ${i}`, `npm run faults -- --only data --seed ${seed} --case ${i}`, async () => {
      const out = await withTimeout(load(dir, lines.join("\n") + "\n", "d.jsonl", spec("d.jsonl", skip ? "on_error = skip;" : "")), CASE_LIMIT_MS);
      if (out.ok) {
        const st = out.session.stats.train;
        expectThat(st.examples + st.skipped + st.empty === lines.filter((l) => l.trim() !== "").length, `records lost: ${st.examples} examples + ${st.skipped} skipped + ${st.empty} empty of ${lines.length} lines`);
        if (!skip) expectThat(st.skipped === 0, "skipped records with on_error = fail");
        t.add(st.skipped > 0 ? "skipped and counted" : "loaded", st.skipped > 0 ? st.skipped : 1);
        return;
      }
      // Nothing left to train on: no line is at fault alone, but the message must account for every record.
      if (/no usable record to train on/.test(out.message)) {
        expectThat(/holds no record|empty prompt or response|bad record\(s\) were skipped/.test(out.message), `an empty data set not explained: ${out.message.slice(0, 300)}`);
        t.add("refused");
        return;
      }
      const m = /d\.jsonl:(\d+)/.exec(out.message);
      expectThat(m, `the error names no line: ${out.message.slice(0, 300)}`);
      expectThat(damaged.has(Number(m![1])), `the error names line ${m![1]}, but the damaged lines are ${[...damaged].join(", ")}: ${out.message.slice(0, 200)}`);
      t.add("refused");
    });
  };
  if (only !== undefined) return one(only);
  for (let i = 0; i < count; i++) await one(i);
}

export async function dataFamily(o: FaultOptions): Promise<Tally> {
  const t = new Tally("data");
  t.zero("crashes", "hangs");
  const dir = mkdtempSync(join(tmpdir(), "pefc-faults-data-"));
  try {
    if (o.case !== undefined) {
      await mutatedCases(t, dir, o.seed ?? 1, 0, o.case);
      return t;
    }
    await namedCases(t, dir, o.verbose);
    const seed = o.seed ?? randomSeed();
    const n = o.quick ? 50 : (o.cases ?? 150);
    if (o.seed === undefined) await mutatedCases(t, dir, 1, n);
    await mutatedCases(t, dir, seed, n);
    t.notes.push(o.seed === undefined ? `seeds 1 and ${seed}` : `seed ${seed}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return t;
}
