// Reading the mapped fields of one record and checking their types. A failure is returned, not
// thrown, so the loader can apply `on_error`.

import { DataError, SKIP_HINT, recordError } from "./errors.js";
import { describeJsonValue, parseJson } from "./text-position.js";
import type { Turn } from "./template.js";

export type Read<T> = { ok: true; value: T } | { ok: false; error: DataError };

const ok = <T>(value: T): Read<T> => ({ ok: true, value });
const bad = <T>(error: DataError): Read<T> => ({ ok: false, error });

/** `role` is the data-block key that maps the field (prompt, response...), for the hint. */
export function missingField(file: string, line: number, name: string, role: string, fields: Record<string, unknown>): DataError {
  const seen = Object.keys(fields).join(", ") || "(none)";
  return new DataError("P602", file, [file, line, `'${name}'`, seen], {
    line,
    help: `map ${role} to one of these fields in the data block's columns, fix the record, or set \`on_error = skip\``,
  });
}

/** A required text field: a string, or null (read as empty). */
export function textField(file: string, line: number, fields: Record<string, unknown>, name: string, role: string): Read<string> {
  if (!Object.hasOwn(fields, name)) return bad(missingField(file, line, name, role, fields));
  const v = fields[name];
  if (v === null) return ok("");
  if (typeof v === "string") return ok(v);
  return bad(recordError(file, line, `field '${name}' is ${describeJsonValue(v)}; expected a string`, SKIP_HINT));
}

/** An optional text field (system): missing or null means none. */
export function optionalText(file: string, line: number, fields: Record<string, unknown>, name: string): Read<string> {
  if (!Object.hasOwn(fields, name) || fields[name] === null) return ok("");
  return textField(file, line, fields, name, "system");
}

/**
 * Earlier turns: a list of [prompt, response] string pairs, as ChatGLM2's history column holds them.
 * In CSV the cell holds that list as JSON text. Missing, null or "" means no history.
 */
export function historyField(file: string, line: number, fields: Record<string, unknown>, name: string): Read<Turn[]> {
  let v = Object.hasOwn(fields, name) ? fields[name] : null;
  const shape = `field '${name}' must be a list of [prompt, response] pairs`;
  if (typeof v === "string") {
    if (v.trim() === "") return ok([]);
    const parsed = parseJson(v);
    if (!parsed.ok) return bad(recordError(file, line, `${shape} (as JSON text in CSV): ${parsed.message}`, SKIP_HINT));
    v = parsed.value;
  }
  if (v === null) return ok([]);
  if (!Array.isArray(v)) return bad(recordError(file, line, `${shape}; it is ${describeJsonValue(v)}`, SKIP_HINT));
  const turns: Turn[] = [];
  for (let i = 0; i < v.length; i++) {
    const pair: unknown = v[i];
    if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== "string" || typeof pair[1] !== "string") {
      return bad(recordError(file, line, `${shape}; item ${i} is ${describeJsonValue(pair)}${Array.isArray(pair) ? ` of length ${pair.length}` : ""}`, SKIP_HINT));
    }
    turns.push({ prompt: pair[0], response: pair[1] });
  }
  return ok(turns);
}

/** A list of integer ids; `allowIgnore` admits -100 (labels). */
export function idsField(file: string, line: number, fields: Record<string, unknown>, name: string, vocabSize: number, allowIgnore: boolean): Read<Int32Array> {
  const v = fields[name];
  if (!Array.isArray(v)) return bad(recordError(file, line, `field '${name}' is ${describeJsonValue(v)}; expected a list of token ids`, SKIP_HINT));
  const out = new Int32Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const id: unknown = v[i];
    const inRange = typeof id === "number" && Number.isInteger(id) && ((id >= 0 && id < vocabSize) || (allowIgnore && id === -100));
    if (!inRange) {
      const what = typeof id === "number" && Number.isInteger(id) ? `${id} is outside the vocabulary [0, ${vocabSize})` : `${JSON.stringify(id) ?? String(id)} is not an integer`;
      const allowed = allowIgnore ? "; labels are ids or -100" : "";
      return bad(recordError(file, line, `${name}[${i}]: ${what}${allowed}`, "re-tokenize with the model's tokenizer, or set `on_error = skip`"));
    }
    out[i] = id;
  }
  return ok(out);
}
