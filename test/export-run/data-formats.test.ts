/**
 * data_pipeline.py reads CSV and JSON-array data files as pefc does: quoted fields with commas,
 * doubled quotes and line breaks, CRLF rows, a lone CR kept as text, a BOM, empty lines, a bad row
 * skipped under `on_error = skip`, system and history fields, records with an empty response
 * dropped; and an eval file of its own in JSON. The oracle is pefc's session.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { writeDataFiles } from "../../src/export-run/data-files.js";
import { prepareSession } from "../../src/runtime/train/session.js";

const work = mkdtempSync(join(tmpdir(), "pefc-data-formats-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const CSV =
  "\ufeffq,a,sys,hist\r\n" +
  '"Why, exactly?","Because ""it is"".",be brief,\r\n' +
  "\r\n" +
  '"two\nlines",plain answer,,"[[""hi"",""hello""]]"\n' +
  "lone\rcr,x\ry,,\n" +
  'bad"quote,y,,\n' +
  "no answer,,,\n" +
  "中文问题,中文回答,,\n";
const JSON_ARRAY = `[
  {"q": "eval one", "a": "first"},

  {"q": "eval two", "a": "second", "sys": null}
]`;

it("csv and json files give pefc's examples", async () => {
  writeFileSync(join(work, "train.csv"), CSV);
  writeFileSync(join(work, "eval.json"), JSON_ARRAY);
  const spec = join(work, "run.peft");
  writeFileSync(
    spec,
    `peft 0.1;
model "builtin:tiny-chatglm2";
data train "train.csv" { prompt = q; response = a; system = sys; history = hist; max_source = 12 tokens; max_target = 9 tokens; truncation = left; on_error = skip; }
data eval "eval.json" { prompt = q; response = a; system = sys; template = alpaca; max_length = 40 tokens; }
freeze base;
lora r=2 on query_key_value;
train { epochs = 2; batch = 2; }
`,
  );
  const s = await prepareSession(readFileSync(spec), spec);
  const dir = join(work, "bundle");
  await writeDataFiles(dir, s);
  const got = JSON.parse(execFileSync("/usr/bin/python3", ["data_pipeline.py", "data_config.json", "--dump"], { cwd: dir, encoding: "utf8" })) as {
    train: { input_ids: number[]; labels: number[]; line: number }[];
    eval: { input_ids: number[]; labels: number[] }[];
  };
  const plain = (e: { inputIds: Int32Array; labels: Int32Array }) => ({ input_ids: Array.from(e.inputIds), labels: Array.from(e.labels) });
  expect(s.train.length).toBe(4);
  expect(got.train.map(({ input_ids, labels }) => ({ input_ids, labels }))).toEqual(s.train.map(plain));
  expect(got.train.map((e) => e.line)).toEqual(s.train.map((e) => e.source.line));
  expect(got.eval.map(({ input_ids, labels }) => ({ input_ids, labels }))).toEqual(s.eval!.map(plain));
});
