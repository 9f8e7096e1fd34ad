// Finding a data file, telling its format and splitting it into records. Whole files are read
// into memory: the data sets pefc trains on are megabytes, and records keep their line numbers.

import { readFile } from "node:fs/promises";
import { extname, resolve } from "node:path";
import { readCsv } from "./csv.js";
import { DataError } from "./errors.js";
import { readJsonArray } from "./json-array.js";
import { readJsonLines } from "./jsonl.js";
import type { SourceRecord } from "./types.js";
import { UserError } from "../io/errors.js";

export type DataFormat = "jsonl" | "json" | "csv";

const EXTENSIONS: Record<string, DataFormat> = { ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv" };

export function formatOf(file: string, given?: DataFormat): DataFormat {
  if (given) return given;
  const f = EXTENSIONS[extname(file).toLowerCase()];
  if (!f) throw new DataError("P605", file, [file]);
  return f;
}

/** Reads `file` (as the spec writes it, relative to `baseDir`) into records. */
export async function readRecords(baseDir: string, file: string, given?: DataFormat): Promise<SourceRecord[]> {
  const format = formatOf(file, given);
  const path = resolve(baseDir, file);
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") throw new DataError("P601", file, [file], { help: `looked for ${path}` });
    throw new UserError(`${file}: cannot read: ${(e as Error).message}`, { file });
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new UserError(`${file}: not valid UTF-8 text; save the file as UTF-8`, { file });
  }
  if (format === "jsonl") return readJsonLines(text);
  if (format === "json") return readJsonArray(text, file);
  return readCsv(text, file);
}
