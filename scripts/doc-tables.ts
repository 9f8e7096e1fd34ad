/**
 * Writes the generated tables of docs/language.md: the keys of every block from the JSON Schemas in
 * src/check/schemas.ts, and the diagnostics from src/diagnostics/table.ts, so the reference lists
 * exactly what the checker enforces and reports.
 *
 *   npx tsx scripts/doc-tables.ts           print the tables
 *   npx tsx scripts/doc-tables.ts --write   replace each generated section of docs/language.md
 *   npx tsx scripts/doc-tables.ts --check   exit 1 when docs/language.md is out of date
 *
 * A generated section sits between `<!-- gen:NAME -->` and `<!-- /gen:NAME -->`.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as S from "../src/check/schemas.js";
import { DIAGNOSTICS } from "../src/diagnostics/table.js";
import type { Schema } from "../src/check/schemas.js";

type Prop = Record<string, unknown>;

/** The blocks in the order the reference presents them, by section name. */
const BLOCKS: [string, Schema][] = [
  ["model", S.MODEL],
  ["data", S.DATA],
  ["lora", S.LORA],
  ["lora-override", S.LORA_OVERRIDE],
  ["adalora", S.ADALORA],
  ["ia3", S.IA3],
  ["bitfit", S.BITFIT],
  ["adapter-houlsby", S.ADAPTER.houlsby],
  ["adapter-pfeiffer", S.ADAPTER.pfeiffer],
  ["adapter-parallel", S.ADAPTER.parallel],
  ["prefix", S.PREFIX],
  ["p_tuning_v2", S.P_TUNING_V2],
  ["p_tuning", S.P_TUNING],
  ["prompt_tuning", S.PROMPT_TUNING],
  ["hybrid", S.HYBRID],
  ["train", S.TRAIN],
];

const UNITS: Record<string, string> = {
  tokens: "tokens",
  steps: "steps",
  epochs: "epochs",
  period: "steps or epochs",
  percent_or_count: "a count, or %",
  steps_or_percent: "steps, or %",
};

function fmtNumber(n: number): string {
  return Math.abs(n) > 0 && Math.abs(n) < 1e-3 ? n.toExponential() : String(n);
}

function range(p: Prop): string {
  const lo = p.minimum !== undefined ? `[${fmtNumber(p.minimum as number)}` : p.exclusiveMinimum !== undefined ? `(${fmtNumber(p.exclusiveMinimum as number)}` : undefined;
  const hi = p.maximum !== undefined ? `${fmtNumber(p.maximum as number)}]` : p.exclusiveMaximum !== undefined ? `${fmtNumber(p.exclusiveMaximum as number)})` : undefined;
  if (lo && hi) return ` in ${lo}, ${hi}`;
  if (lo) return p.minimum !== undefined ? ` ≥ ${fmtNumber(p.minimum as number)}` : ` > ${fmtNumber(p.exclusiveMinimum as number)}`;
  if (hi) return p.maximum !== undefined ? ` ≤ ${fmtNumber(p.maximum as number)}` : ` < ${fmtNumber(p.exclusiveMaximum as number)}`;
  return "";
}

function typeText(p: Prop): string {
  if (Array.isArray(p.enum)) return (p.enum as string[]).map((w) => `\`${w}\``).join(" \\| ");
  switch (p.type) {
    case "integer": return `integer${range(p)}`;
    case "number": return `number${range(p)}`;
    case "boolean": return "`true` \\| `false`";
    case "string": return "word or string";
    case "array": {
      const items = (p.items ?? {}) as Prop;
      const n = p.minItems === p.maxItems ? `${String(p.minItems)} ` : "";
      return `tuple of ${n}numbers${range(items)}`;
    }
    default:
      if (Array.isArray(p.anyOf)) return "string, or tuple of strings";
      return "any";
  }
}

function defaultText(p: Prop): string {
  if (!("default" in p)) return "—";
  const d = p.default;
  if (Array.isArray(d)) return `\`(${d.map((x) => fmtNumber(x as number)).join(", ")})\``;
  if (typeof d === "number") return `\`${fmtNumber(d)}\``;
  return `\`${String(d)}\``;
}

/** Text for a table cell: backslashes shown as written, pipes escaped, one line. */
function cell(s: string): string {
  return s.replace(/\\/g, "\\\\").replace(/\|/g, "\\|").replace(/\n/g, " ");
}

/** `inherited`: the block's keys default to the enclosing method's values, not the schema's. */
export function table(schema: Schema, inherited = false): string {
  const keys = Object.entries(schema.properties);
  if (keys.length === 0) return `${schema.description}\n\nThis block takes no keys.`;
  const rows = keys.map(([k, p]) => {
    const unit = p["x-unit"] ? UNITS[p["x-unit"] as string] ?? String(p["x-unit"]) : "";
    return `| \`${k}\` | ${typeText(p)} | ${inherited ? "the method's" : defaultText(p)} | ${unit} | ${cell(String(p.description ?? ""))} |`;
  });
  const lines = [schema.description, "", "| key | type | default | unit | meaning |", "| --- | --- | --- | --- | --- |", ...rows];
  const exclusive = schema["x-exclusive"] ?? [];
  if (exclusive.length > 0) {
    lines.push("", `Give at most one of each pair: ${exclusive.map(([a, b]) => `\`${a}\` / \`${b}\``).join(", ")}.`);
  }
  return lines.join("\n");
}

function optimizerNote(): string {
  const rows = Object.entries(S.OPTIMIZER_KEYS).map(([k, opts]) => `\`${k}\` (${opts.join(", ")})`);
  return `Keys that apply to some optimizers only: ${rows.join(", ")}.`;
}

function diagnostics(): string {
  const rows = Object.entries(DIAGNOSTICS).map(([code, d]) => {
    const message = d.message.replace(/(\{\d+\})+/g, "…");
    return `| ${code} | ${d.severity} | ${cell(message)} | ${cell(d.explain)} |`;
  });
  return ["| code | severity | message | meaning |", "| --- | --- | --- | --- |", ...rows].join("\n");
}

/** Every generated section: its name and its text. */
function sections(): [string, string][] {
  const blocks = BLOCKS.map(([name, schema]): [string, string] => [
    name,
    name === "train" ? `${table(schema)}\n\n${optimizerNote()}` : table(schema, name === "lora-override"),
  ]);
  return [...blocks, ["diagnostics", diagnostics()]];
}

function render(doc: string): string {
  let out = doc;
  for (const [name, text] of sections()) {
    const open = `<!-- gen:${name} -->`;
    const close = `<!-- /gen:${name} -->`;
    const a = out.indexOf(open);
    const b = out.indexOf(close);
    if (a < 0 || b < a) throw new Error(`docs/language.md has no section ${open} ... ${close}`);
    out = `${out.slice(0, a + open.length)}\n\n${text}\n\n${out.slice(b)}`;
  }
  return out;
}

const mode = process.argv[2];
const docPath = join(dirname(fileURLToPath(import.meta.url)), "..", "docs", "language.md");
if (mode === "--write" || mode === "--check") {
  const doc = readFileSync(docPath, "utf8");
  const next = render(doc);
  if (mode === "--write") {
    if (next !== doc) writeFileSync(docPath, next);
    console.log(next === doc ? "docs/language.md is up to date" : "docs/language.md updated");
  } else if (next !== doc) {
    console.error("docs/language.md is out of date: run npx tsx scripts/doc-tables.ts --write");
    process.exitCode = 1;
  }
} else {
  for (const [name, text] of sections()) console.log(`### ${name}\n\n${text}\n`);
}
