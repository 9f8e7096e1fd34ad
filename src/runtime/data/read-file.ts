// Finding a data file, telling its format and splitting it into records. Whole files are read
// into memory: the data sets pefc trains on are megabytes, and records keep their line numbers.

import { readFile } from "node:fs/promises";
import { extname, resolve } from "node:path";
import { readCsv } from "./csv.js";
import { DataError, recordError } from "./errors.js";
import { readJsonArray } from "./json-array.js";
import { readJsonLines } from "./jsonl.js";
import type { SourceRecord } from "./types.js";
import { invalidUtf8Lines } from "./utf8.js";
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
    const bad = invalidUtf8Lines(bytes);
    // In JSON lines a bad line is one bad record; in a JSON array or CSV it spoils the file.
    if (format === "jsonl") return readJsonLines(new TextDecoder("utf-8").decode(bytes), bad);
    const [line, at] = [...bad][0]!;
    throw recordError(file, line, `not valid UTF-8 (byte ${at.byte} of the file)`, "save the file as UTF-8", at.column);
  }
  if (format === "jsonl") return readJsonLines(text);
  if (format === "json") return readJsonArray(text, file);
  return readCsv(text, file);
}
