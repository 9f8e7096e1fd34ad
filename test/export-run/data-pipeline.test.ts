/**
 * The data part of an export-run bundle (data_pipeline.py, standard library only) run under
 * Debian's python3 must give exactly the token ids, labels, eval split and per-epoch micro-batch
 * order pefc trains on, for every example with a data block (also those export-run refuses: the
 * data pipeline does not depend on the method) and for the PEFT conformance runs. The oracle is
 * pefc's own session and batching. chatglm2-6b-medical.peft reads its model from ${CHATGLM2_6B}:
 * here the ChatGLM2 folder in THUDM's published layout that the torch fixtures build (bf16 .bin
 * shards, a SentencePiece tokenizer.model, ChatGLMTokenizer), so the bundle tokenizes with the
 * sentencepiece package under ChatGLM2's conventions.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { writeDataFiles } from "../../src/export-run/data-files.js";
import { epochGroups } from "../../src/runtime/train/loop.js";
import { prepareSession, type Session } from "../../src/runtime/train/session.js";
import type { Example } from "../../src/runtime/data/index.js";
import { chatglm2Fixtures } from "../models/chatglm2-fixtures.js";

const EXAMPLES = new URL("../../examples/", import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), "pefc-data-pipeline-"));
const FIXTURES = chatglm2Fixtures();
process.env.CHATGLM2_6B = join(FIXTURES, "chatglm2");
afterAll(() => rmSync(work, { recursive: true, force: true }));

interface Dump {
  train: { input_ids: number[]; labels: number[]; line: number }[];
  eval: { input_ids: number[]; labels: number[] }[] | null;
  pad_id: number;
  steps_per_epoch: number;
  total_steps: number;
  epochs: { input_ids: number[][]; labels: number[][]; attention_mask: number[][] }[][];
  /** data_config.json's tokenizer entry. */
  tokenizer: unknown;
}

function rows(flat: Int32Array, B: number, T: number): number[][] {
  return Array.from({ length: B }, (_, b) => Array.from(flat.subarray(b * T, (b + 1) * T)));
}

function plain(ex: readonly Example[]): { input_ids: number[]; labels: number[] }[] {
  return ex.map((e) => ({ input_ids: Array.from(e.inputIds), labels: Array.from(e.labels) }));
}

async function python(s: Session, name: string): Promise<Dump> {
  const dir = join(work, name);
  await writeDataFiles(dir, s);
  const out = execFileSync("/usr/bin/python3", ["data_pipeline.py", "data_config.json", "--dump"], { cwd: dir, encoding: "utf8", maxBuffer: 1 << 28 });
  return { ...(JSON.parse(out) as Dump), tokenizer: (JSON.parse(readFileSync(join(dir, "data_config.json"), "utf8")) as { tokenizer: unknown }).tokenizer };
}

const CONFORMANCE = new URL("../../../shared/data/peft-conformance/", import.meta.url).pathname;
const specs = [
  ...readdirSync(EXAMPLES).filter((f) => f.endsWith(".peft")).sort().map((f) => join(EXAMPLES, f)),
  ...readdirSync(CONFORMANCE, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => join(CONFORMANCE, d.name, "run.peft")).sort(),
];

describe("export-run data pipeline under python3", () => {
  it("covers every example", () => {
    expect(specs.filter((p) => p.startsWith(EXAMPLES)).length).toBeGreaterThanOrEqual(16);
  });
  for (const path of specs) {
    const f = path.startsWith(EXAMPLES) ? path.slice(EXAMPLES.length) : `conformance/${path.split("/").at(-2)}`;
    it(f, async () => {
      const s = await prepareSession(readFileSync(path), path);
      expect(s.spec.data.train, `${f} has a data block`).toBeDefined();
      const got = await python(s, f.replace(".peft", "").replace("/", "-"));
      if (f === "chatglm2-6b-medical.peft") {
        // ChatGLM2's conventions, by Python sentencepiece's piece count n (the fixtures' oracle):
        // every example starts [gMASK] = n+1, sop = n+3, and ends with </s>.
        const n = (JSON.parse(readFileSync(join(FIXTURES, "tokenizer.json"), "utf8")) as { chatglm2: { n: number; eos: number } }).chatglm2;
        expect(got.tokenizer).toEqual({ kind: "sentencepiece", folder: "tokenizer", convention: "chatglm2" });
        for (const e of got.train) {
          expect(e.input_ids.slice(0, 2)).toEqual([n.n + 1, n.n + 3]);
          expect(e.input_ids.at(-1)).toBe(n.eos);
        }
      }
      expect(got.train.map(({ input_ids, labels }) => ({ input_ids, labels }))).toEqual(plain(s.train));
      expect(got.train.map((e) => e.line)).toEqual(s.train.map((e) => e.source.line));
      expect(got.eval === null ? undefined : got.eval.map(({ input_ids, labels }) => ({ input_ids, labels }))).toEqual(s.eval ? plain(s.eval) : undefined);
      expect(got.steps_per_epoch).toBe(s.stepsPerEpoch);
      expect(got.total_steps).toBe(s.totalSteps);
      const padId = s.tokenizer?.padId ?? 0;
      expect(got.pad_id).toBe(padId);
      expect(got.epochs.length).toBe(Math.ceil(s.totalSteps / s.stepsPerEpoch));
      got.epochs.forEach((batches, epoch) => {
        const want = epochGroups(s.train, s, epoch, padId).flat();
        expect(batches.length).toBe(want.length);
        batches.forEach((b, i) => {
          const w = want[i]!;
          expect(b.input_ids).toEqual(rows(w.inputIds, w.B, w.T));
          expect(b.labels).toEqual(rows(w.labels, w.B, w.T));
          expect(b.attention_mask.flat().reduce((a, x) => a + x, 0)).toBe(w.tokens);
        });
      });
    });
  }
});
