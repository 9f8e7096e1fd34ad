import { checkSource } from "../../src/frontend.js";
import { formatDiagnostic } from "../../src/diagnostics/index.js";

/** `line:col CODE` for every diagnostic of `src`, in position order. */
export function codesAt(src: string, fragment = false): string[] {
  return checkSource(src, "t.peft", { fragment }).diagnostics.map((d) => `${d.span?.line}:${d.span?.column} ${d.code}`);
}

export function messages(src: string, fragment = false): string[] {
  return checkSource(src, "t.peft", { fragment }).diagnostics.map(formatDiagnostic);
}
