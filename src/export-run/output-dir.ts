/**
 * Output safety for `pefc export-run --to DIR`: the bundle replaces DIR as a whole, so DIR must be
 * new, empty, or a bundle this command wrote before (it holds MARKER). Anything else needs
 * --overwrite, so a user's own files are never lost to a mistyped path.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { diag, type Diagnostic } from "../diagnostics/index.js";

export const MARKER = ".pefc-export-run";

/** Undefined when the bundle may be written to `dir`; else why not. */
export function outputProblem(dir: string, overwrite: boolean): Diagnostic | undefined {
  let st;
  try {
    st = statSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    return diag("P902", dir, undefined, [dir, (e as Error).message]);
  }
  if (!st.isDirectory()) return diag("P921", dir, undefined, [dir]);
  const entries = readdirSync(dir);
  if (entries.length === 0 || overwrite || ownBundle(dir)) return undefined;
  return diag("P920", dir, undefined, [dir]);
}

function ownBundle(dir: string): boolean {
  try {
    const m = JSON.parse(readFileSync(join(dir, MARKER), "utf8")) as { tool?: unknown };
    return m.tool === "pefc export-run";
  } catch {
    return false;
  }
}

export function markerText(specFile: string, engine: string): string {
  return `${JSON.stringify({ tool: "pefc export-run", spec: specFile, engine }, null, 2)}\n`;
}
