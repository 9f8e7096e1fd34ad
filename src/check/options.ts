/**
 * Checks one option block (inline `key=value` arguments plus `{ key = value; }` items) against its
 * JSON Schema: unknown and duplicate keys, units, types, ranges and exclusive pairs, each reported
 * at the offending key or value. ajv validates; this file turns its errors into coded diagnostics.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import type { Assign, Unit, Value } from "../parser/ast.js";
import { type Diagnostic, diag, didYouMean, q } from "../diagnostics/index.js";
import { KEY_ALIASES, type Schema } from "./schemas.js";

const ajv = new Ajv({ allErrors: true, strict: true });
ajv.addKeyword({ keyword: "x-unit" });
ajv.addKeyword({ keyword: "x-exclusive" });
const compiled = new WeakMap<Schema, ValidateFunction>();

function validator(schema: Schema): ValidateFunction {
  let v = compiled.get(schema);
  if (!v) {
    v = ajv.compile(schema);
    compiled.set(schema, v);
  }
  return v;
}

export interface BlockValues {
  /** Values as given, converted to JSON, plus schema defaults for absent keys. */
  values: Record<string, unknown>;
  /** Keys the user wrote, with their assignment (for spans and units). */
  given: Map<string, Assign>;
  /** False when any item of the block was refused; the values are then not to be trusted. */
  ok: boolean;
}

const UNIT_RULES: Record<string, { allowed: (Unit | undefined)[]; name: string }> = {
  none: { allowed: [undefined], name: "plain numbers" },
  tokens: { allowed: [undefined, "tokens"], name: "tokens" },
  steps: { allowed: [undefined, "steps"], name: "steps" },
  epochs: { allowed: [undefined, "epochs"], name: "epochs" },
  period: { allowed: [undefined, "steps", "epochs"], name: "steps or epochs" },
  percent_or_count: { allowed: [undefined, "percent"], name: "a count of records or a percentage" },
  steps_or_percent: { allowed: [undefined, "steps", "percent"], name: "steps or a percentage" },
};

export function describeValue(v: Value): string {
  switch (v.kind) {
    case "number": return `'${v.text}${v.unit ? unitText(v.unit) : ""}'`;
    case "string": return JSON.stringify(v.value);
    case "bool": return `'${v.value}'`;
    case "name": return `'${v.value}'`;
    case "role": return `'@${v.value}'`;
    case "tuple": return `a tuple of ${v.items.length}`;
  }
}

function unitText(u: Unit): string {
  return u === "percent" ? "%" : ` ${u}`;
}

function toJson(v: Value): unknown {
  switch (v.kind) {
    case "number": return v.unit === "percent" ? v.value / 100 : v.value;
    case "string": case "name": case "bool": return v.value;
    case "role": return `@${v.value}`;
    case "tuple": return v.items.map(toJson);
  }
}

function expectation(prop: Record<string, unknown>): string {
  if (Array.isArray(prop.enum)) return `one of ${(prop.enum as string[]).join(", ")}`;
  switch (prop.type) {
    case "integer": return "a whole number";
    case "number": return "a number";
    case "boolean": return "true or false";
    case "array": return `a tuple of ${String(prop.minItems ?? "")} numbers like (0.9, 0.999)`.replace("of  ", "of ");
    case "string": return "a word or a quoted text";
    default: return "a name or a tuple of names";
  }
}

function rangeText(e: ErrorObject): string {
  const p = e.params as { comparison?: string; limit?: number };
  return `${p.comparison ?? ""} ${p.limit ?? ""}`.trim();
}

/** Checks `items` against `schema`; `what` names the block in messages (`lora`, `train`). */
export function checkBlock(schema: Schema, what: string, items: readonly Assign[], file: string, out: Diagnostic[]): BlockValues {
  const given = new Map<string, Assign>();
  const raw: Record<string, unknown> = {};
  let ok = true;
  const keys = Object.keys(schema.properties);
  for (const item of items) {
    const prop = schema.properties[item.key];
    if (!prop) {
      const alias = KEY_ALIASES[item.key];
      const guess = alias && keys.includes(alias) ? alias : didYouMean(item.key, keys);
      const hint = guess ? `; did you mean ${q(guess)}?` : keys.length ? `; its keys are ${keys.join(", ")}` : "; it takes no keys";
      out.push(diag("P301", file, item.keySpan, [q(item.key), what, hint]));
      ok = false;
      continue;
    }
    const first = given.get(item.key);
    if (first) {
      out.push(diag("P306", file, item.keySpan, [q(item.key), first.keySpan.line]));
      ok = false;
      continue;
    }
    given.set(item.key, item);
    if (!checkUnits(item, prop, file, out)) {
      ok = false;
      continue;
    }
    raw[item.key] = toJson(item.value);
  }
  const validate = validator(schema);
  if (!validate(raw)) {
    const seen = new Set<string>();
    for (const e of validate.errors ?? []) {
      if (e.keyword === "additionalProperties") continue;
      const key = e.instancePath.split("/")[1] ?? "";
      const item = given.get(key);
      if (!item || seen.has(key)) continue;
      seen.add(key);
      ok = false;
      const prop = schema.properties[key] ?? {};
      if (["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"].includes(e.keyword)) {
        const shown = item.value.kind === "tuple" ? describeValue(item.value) : describeValue(item.value);
        out.push(diag("P303", file, item.value.span, [q(key), rangeText(e), shown.replace(/^'|'$/g, "")]));
      } else {
        out.push(diag("P302", file, item.value.span, [q(key), expectation(prop), describeValue(item.value)]));
      }
    }
  }
  for (const [a, b] of schema["x-exclusive"] ?? []) {
    const ia = given.get(a);
    const ib = given.get(b);
    if (ia && ib) {
      const later = ia.span.start > ib.span.start ? ia : ib;
      out.push(diag("P305", file, later.keySpan, [q(a), q(b)]));
      ok = false;
    }
  }
  const values: Record<string, unknown> = {};
  for (const [k, prop] of Object.entries(schema.properties)) {
    if (k in raw) values[k] = raw[k];
    else if ("default" in prop) values[k] = structuredClone(prop.default);
  }
  return { values, given, ok };
}

function checkUnits(item: Assign, prop: Record<string, unknown>, file: string, out: Diagnostic[]): boolean {
  const v = item.value;
  if (v.kind === "tuple") return v.items.every((x) => checkUnits({ ...item, value: x }, prop, file, out));
  if (v.kind !== "number") return true;
  if (!Number.isFinite(v.value) || Math.abs(v.value) > Number.MAX_SAFE_INTEGER) {
    out.push(diag("P303", file, v.span, [q(item.key), "a number of reasonable size", v.text]));
    return false;
  }
  const rule = UNIT_RULES[(prop["x-unit"] as string | undefined) ?? "none"] ?? UNIT_RULES.none!;
  if (!rule.allowed.includes(v.unit)) {
    out.push(diag("P304", file, v.span, [q(item.key), rule.name, describeValue(v)]));
    return false;
  }
  return true;
}
