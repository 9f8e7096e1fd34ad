// Shared by the data tests: temp files and a DataSpec with the checker's defaults.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DataSpec } from "../../src/check/spec.js";

export function tempDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "pefc-data-"));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

export function dataSpec(over: Partial<DataSpec> = {}): DataSpec {
  return {
    split: "train",
    file: "train.jsonl",
    mode: "text",
    fields: { prompt: "ask", response: "answer" },
    template: { name: "chatglm2" },
    lengths: { maxSource: 512, maxTarget: 512 },
    truncation: "right",
    loss: "response",
    shuffle: true,
    seed: 42,
    onError: "fail",
    span: { line: 1, column: 1, endLine: 1, endColumn: 1, start: 0, end: 0 },
    ...over,
  };
}

/** The byte tokenizer's ids of `s` computed from first principles: UTF-8 bytes + 3. */
export function byteIds(s: string): number[] {
  return [...new TextEncoder().encode(s)].map((b) => b + 3);
}

export const CHATGLM2 = "[Round {round}]\n\n问：{prompt}\n\n答：";
