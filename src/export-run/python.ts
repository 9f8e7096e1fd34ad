/**
 * Python literals for the generated scripts: None/True/False, strings as JSON writes them (valid
 * Python), ints as ints, and numbers Python must hold as floats (wrapped in PyFloat) as repr()
 * writes them, so `lr = 0.001` reads as the user would type it.
 */
import { PyFloat, pyFloatRepr, type PyJson } from "../runtime/adapter/index.js";

export function py(v: PyJson | undefined, indent = ""): string {
  if (v === null || v === undefined) return "None";
  if (typeof v === "boolean") return v ? "True" : "False";
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : pyFloatRepr(v);
  if (typeof v === "string") return JSON.stringify(v);
  if (v instanceof PyFloat) return pyFloatRepr(v.value);
  const inner = `${indent}    `;
  if (Array.isArray(v)) return v.length === 0 ? "[]" : `[${v.map((x) => py(x, indent)).join(", ")}]`;
  const keys = Object.keys(v);
  if (keys.length === 0) return "{}";
  const one = `{${keys.map((k) => `${JSON.stringify(k)}: ${py(v[k], indent)}`).join(", ")}}`;
  if (one.length <= 96 && !one.includes("\n")) return one;
  return `{\n${keys.map((k) => `${inner}${JSON.stringify(k)}: ${py(v[k], inner)},`).join("\n")}\n${indent}}`;
}

/** Keyword arguments, one per line: `Cls(\n    a=1,\n)`. */
export function pyCall(fn: string, kwargs: Record<string, PyJson>, indent: string): string {
  const inner = `${indent}    `;
  const lines = Object.keys(kwargs).map((k) => `${inner}${k}=${py(kwargs[k], inner)},`);
  return `${fn}(\n${lines.join("\n")}\n${indent})`;
}
