// JSON lines: one object per line, blank lines skipped. The whole file is read at once (data files
// here are megabytes); a streaming reader would only change how lines arrive.

import { describeJsonValue, parseJson } from "./text-position.js";
import type { SourceRecord } from "./types.js";

/** `badUtf8`: lines (1-based) whose bytes were not UTF-8, with the first bad byte's column; each is a bad record. */
export function readJsonLines(text: string, badUtf8?: ReadonlyMap<number, { column: number; byte: number }>): SourceRecord[] {
  const out: SourceRecord[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!;
    if (line.endsWith("\r")) line = line.slice(0, -1);
    if (i === 0 && line.startsWith("\ufeff")) line = line.slice(1);
    if (line.trim() === "") continue;
    const index = out.length;
    const bad = badUtf8?.get(i + 1);
    if (bad) {
      out.push({ ok: false, message: `not valid UTF-8 (byte ${bad.byte} of the file); save the file as UTF-8`, line: i + 1, index, column: bad.column });
      continue;
    }
    const parsed = parseJson(line);
    if (!parsed.ok) {
      const r: SourceRecord = { ok: false, message: parsed.message, line: i + 1, index };
      if (parsed.offset !== undefined) r.column = parsed.offset + 1;
      out.push(r);
    } else if (typeof parsed.value !== "object" || parsed.value === null || Array.isArray(parsed.value)) {
      out.push({ ok: false, message: `the line is ${describeJsonValue(parsed.value)}, not a JSON object`, line: i + 1, index });
    } else {
      out.push({ ok: true, fields: parsed.value as Record<string, unknown>, line: i + 1, index });
    }
  }
  return out;
}
