// JSON lines: one object per line, blank lines skipped. The whole file is read at once (data files
// here are megabytes); a streaming reader would only change how lines arrive.

import { describeJsonValue, parseJson } from "./text-position.js";
import type { SourceRecord } from "./types.js";

export function readJsonLines(text: string): SourceRecord[] {
  const out: SourceRecord[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!;
    if (line.endsWith("\r")) line = line.slice(0, -1);
    if (i === 0 && line.startsWith("\ufeff")) line = line.slice(1);
    if (line.trim() === "") continue;
    const index = out.length;
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
