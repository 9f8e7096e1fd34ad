/**
 * The bundle's files are written from templates kept as files beside this module
 * (src/export-run/templates/), so the Python a user reads and edits is ordinary Python in the
 * source tree. The folder is found from this module's own location, which works alike for
 * src/export-run/*.ts (tests) and dist/export-run/*.js (the package ships src/export-run/templates).
 * Placeholders are {{NAME}}; every one must be given and every value used, so a template and its
 * filler cannot drift apart silently.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const TEMPLATE_DIR = fileURLToPath(new URL("../../src/export-run/templates/", import.meta.url));

export function readTemplate(name: string): string {
  return readFileSync(`${TEMPLATE_DIR}${name}`, "utf8");
}

export function render(name: string, values: Record<string, string>): string {
  const text = readTemplate(name);
  const used = new Set<string>();
  const out = text.replace(/\{\{([A-Z0-9_]+)\}\}/g, (_, key: string) => {
    const v = values[key];
    if (v === undefined) throw new Error(`template ${name}: no value for {{${key}}}`);
    used.add(key);
    return v;
  });
  const unused = Object.keys(values).filter((k) => !used.has(k));
  if (unused.length) throw new Error(`template ${name} has no {{${unused.join("}}, {{")}}}`);
  return out;
}
