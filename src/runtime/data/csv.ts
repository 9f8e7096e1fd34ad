// CSV as RFC 4180 describes it: a header row naming the fields, comma-separated fields, fields in
// double quotes may hold commas, line breaks and doubled quotes (""), records end with CRLF or LF.
// Beyond the RFC: a leading UTF-8 BOM is dropped and empty lines are skipped. A stray quote inside
// an unquoted field, or a row whose field count differs from the header's, is a bad record that
// `on_error = skip` can drop; an unclosed quote swallows the rest of the file and always fails.

import { recordError } from "./errors.js";
import type { SourceRecord } from "./types.js";

interface Row {
  values: string[];
  line: number;
  error?: { message: string; line: number; column: number };
}

export function readCsv(text: string, file: string): SourceRecord[] {
  const rows = parseRows(text.startsWith("\ufeff") ? text.slice(1) : text, file);
  const header = rows.shift();
  if (!header) return [];
  if (header.error) throw recordError(file, header.error.line, `header row: ${header.error.message}`, undefined, header.error.column);
  const names = header.values;
  const seen = new Set<string>();
  for (const n of names) {
    if (seen.has(n)) throw recordError(file, header.line, `the header names the column '${n}' twice`);
    seen.add(n);
  }
  return rows.map((row, index): SourceRecord => {
    if (row.error) return { ok: false, message: row.error.message, line: row.error.line, index, column: row.error.column };
    if (row.values.length !== names.length) {
      return { ok: false, message: `the row has ${row.values.length} fields but the header has ${names.length}`, line: row.line, index };
    }
    const fields: Record<string, unknown> = {};
    names.forEach((n, i) => (fields[n] = row.values[i]!));
    return { ok: true, fields, line: row.line, index };
  });
}

/** Splits `text` into rows of raw field values; exported for tests of the tokenizer alone. */
export function parseRows(text: string, file: string): Row[] {
  const rows: Row[] = [];
  let pos = 0;
  let line = 1;
  let lineStart = 0;
  const n = text.length;
  const newline = (at: number): number => {
    // Returns the offset after the line break at `at` (CRLF or LF), or -1 if there is none.
    if (text[at] === "\n") return at + 1;
    if (text[at] === "\r" && text[at + 1] === "\n") return at + 2;
    return -1;
  };
  while (pos < n) {
    const after = newline(pos);
    if (after >= 0) {
      pos = after;
      line++;
      lineStart = pos;
      continue;
    }
    const row: Row = { values: [], line };
    let field = "";
    for (;;) {
      if (text[pos] === '"') {
        const openLine = line;
        const openColumn = pos - lineStart + 1;
        pos++;
        for (;;) {
          if (pos >= n) throw recordError(file, openLine, "a quoted field is never closed", "close it with a double quote", openColumn);
          const c = text[pos]!;
          if (c === '"') {
            if (text[pos + 1] === '"') {
              field += '"';
              pos += 2;
              continue;
            }
            pos++;
            break;
          }
          if (c === "\n") {
            line++;
            lineStart = pos + 1;
          }
          field += c;
          pos++;
        }
        if (pos < n && text[pos] !== "," && newline(pos) < 0) {
          row.error = { message: "text after the closing quote of a field; double a quote inside a quoted field (\"\")", line, column: pos - lineStart + 1 };
        }
      } else {
        while (pos < n && text[pos] !== "," && newline(pos) < 0) {
          if (text[pos] === '"' && !row.error) {
            row.error = { message: "a quote inside an unquoted field; quote the whole field and double the inner quotes", line, column: pos - lineStart + 1 };
          }
          field += text[pos];
          pos++;
        }
      }
      if (row.error) {
        // Resynchronise at the next line break; the rest of this row is not worth parsing.
        while (pos < n && newline(pos) < 0) pos++;
        break;
      }
      row.values.push(field);
      field = "";
      if (text[pos] === ",") {
        pos++;
        continue;
      }
      break;
    }
    rows.push(row);
    const after2 = pos < n ? newline(pos) : -1;
    if (after2 >= 0) {
      pos = after2;
      line++;
      lineStart = pos;
    }
  }
  return rows;
}
