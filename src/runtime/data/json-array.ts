// A JSON file holding one top-level array of objects. JSON.parse gives no positions, so a small
// scanner first finds where each element starts and ends (strings and nesting respected); each
// element is then parsed on its own, which lets an error name the record index and its line and
// lets `on_error = skip` drop one bad element without losing the rest. A file whose outer
// structure is broken (not an array, an unclosed element) cannot be resynchronised and always fails.

import { recordError } from "./errors.js";
import { LineIndex, describeJsonValue, parseJson } from "./text-position.js";
import type { SourceRecord } from "./types.js";

export function readJsonArray(text: string, file: string): SourceRecord[] {
  const lines = new LineIndex(text);
  const fail = (offset: number, message: string): never => {
    throw recordError(file, lines.line(offset), message, undefined, lines.column(offset));
  };
  let pos = skipSpace(text, text.startsWith("\ufeff") ? 1 : 0);
  if (text[pos] !== "[") fail(pos, "a .json data file must hold one array of records (for one object per line, use format jsonl)");
  pos = skipSpace(text, pos + 1);
  const out: SourceRecord[] = [];
  if (text[pos] === "]") return checkTrailing(text, pos + 1, fail, out);
  for (;;) {
    const start = pos;
    const end = scanValue(text, start);
    if (end < 0) fail(start, `record ${out.length} is not closed before the end of the file`);
    const index = out.length;
    const line = lines.line(start);
    const parsed = parseJson(text.slice(start, end));
    if (!parsed.ok) {
      const at = start + (parsed.offset ?? 0);
      out.push({ ok: false, message: `record ${index}: ${parsed.message}`, line: lines.line(at), index, column: lines.column(at) });
    } else if (typeof parsed.value !== "object" || parsed.value === null || Array.isArray(parsed.value)) {
      out.push({ ok: false, message: `record ${index} is ${describeJsonValue(parsed.value)}, not an object`, line, index });
    } else {
      out.push({ ok: true, fields: parsed.value as Record<string, unknown>, line, index });
    }
    pos = skipSpace(text, end);
    if (text[pos] === ",") {
      pos = skipSpace(text, pos + 1);
      continue;
    }
    if (text[pos] === "]") return checkTrailing(text, pos + 1, fail, out);
    fail(pos, pos >= text.length ? "the array is not closed with ]" : `expected , or ] after record ${index}`);
  }
}

function checkTrailing(text: string, pos: number, fail: (offset: number, message: string) => never, out: SourceRecord[]): SourceRecord[] {
  const rest = skipSpace(text, pos);
  if (rest < text.length) fail(rest, "unexpected text after the closing ]");
  return out;
}

function skipSpace(text: string, pos: number): number {
  while (pos < text.length && (text[pos] === " " || text[pos] === "\n" || text[pos] === "\r" || text[pos] === "\t")) pos++;
  return pos;
}

/** End offset (exclusive) of the JSON value starting at `pos`, or -1 when it never closes. */
function scanValue(text: string, pos: number): number {
  let depth = 0;
  let i = pos;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '"') {
      i = scanString(text, i);
      if (i < 0) return -1;
      if (depth === 0) return i;
      continue;
    }
    if (c === "{" || c === "[") depth++;
    else if (c === "}" || c === "]") {
      if (depth === 0) return i;
      depth--;
      if (depth === 0) return i + 1;
    } else if (depth === 0 && (c === "," || c === " " || c === "\n" || c === "\r" || c === "\t")) return i;
    i++;
  }
  return depth === 0 ? i : -1;
}

/** Offset just past the closing quote of the string starting at `pos`, or -1. */
function scanString(text: string, pos: number): number {
  for (let i = pos + 1; i < text.length; i++) {
    const c = text[i];
    if (c === "\\") i++;
    else if (c === '"') return i + 1;
  }
  return -1;
}
