/**
 * The IR text form, the golden-test surface: one line per input, parameter, op and output, in graph
 * order; value names are the module paths, types inline, parameters marked trainable or frozen.
 * Nothing here depends on the environment (no locale, no map iteration order), so two builds of the
 * same graph print byte-identical text.
 */
import type { Graph, Param, ParamInit } from "./graph.js";
import type { AttrValue, Attrs } from "./opdef.js";
import { formatType, numel } from "./shape.js";

/** 1234567 -> `1,234,567`, independent of the locale. */
export function groupDigits(n: number): string {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

function value(v: AttrValue): string {
  if (Array.isArray(v)) return `[${v.map((x) => String(x)).join(",")}]`;
  if (typeof v === "string") return /^[A-Za-z0-9_.+\-*]+$/.test(v) ? v : JSON.stringify(v);
  return String(v);
}

function attrs(a: Attrs): string {
  const keys = Object.keys(a).sort();
  return keys.length ? ` {${keys.map((k) => `${k}=${value(a[k]!)}`).join(", ")}}` : "";
}

function init(i: ParamInit): string {
  switch (i.kind) {
    case "zeros":
    case "ones":
      return i.kind;
    case "constant":
      return `constant(${i.value})`;
    case "normal":
      return `normal(${i.mean},${i.std})`;
    case "uniform":
      return `uniform(${i.low},${i.high})`;
    case "rows":
      return `rows(${i.from},[${i.rows.join(",")}])`;
  }
}

function param(p: Param): string {
  const mark = p.trainable ? "trainable" : "frozen   ";
  const origin = (p.origin === "base" ? "" : ` origin=${p.origin}`) + (p.method !== undefined ? ` method=${p.method}` : "");
  const ini = p.init ? ` init=${init(p.init)}` : "";
  return `param ${mark} ${p.name}: ${formatType(p)}${origin}${ini}`;
}

export function printGraph(g: Graph): string {
  const total = g.params.reduce((s, p) => s + numel(p.shape), 0);
  const trainable = g.params.filter((p) => p.trainable);
  const tElems = trainable.reduce((s, p) => s + numel(p.shape), 0);
  const lines = [
    `graph ${g.name}`,
    `# ${g.inputs.length} inputs, ${g.params.length} params (${trainable.length} trainable), ${g.ops.length} ops`,
    `# parameter elements: ${groupDigits(total)} total, ${groupDigits(tElems)} trainable`,
  ];
  for (const v of g.inputs) lines.push(`input ${v.name}: ${formatType(v)}`);
  for (const p of g.params) lines.push(param(p));
  for (const op of g.ops) {
    const outs = op.outputs.map((o) => `${o.name}: ${formatType(o)}`).join(", ");
    const first = op.outputs[0]?.name ?? "";
    const owner = op.module === "" || first.startsWith(`${op.module}.`) ? "" : `  @${op.module}`;
    lines.push(`${outs} = ${op.op}(${op.inputs.join(", ")})${attrs(op.attrs)}${owner}`);
  }
  for (const v of g.outputs) lines.push(`output ${v}`);
  for (const v of g.saved ?? []) lines.push(`saved ${v}`);
  return lines.join("\n") + "\n";
}
