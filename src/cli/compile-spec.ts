/**
 * Shared by commands that need the compiled graph: read and check a .peft file, then compile it
 * against its model's config.json. Prints diagnostics; returns undefined when there were errors.
 */
import { formatDiagnostic, hasErrors, sortDiagnostics } from "../diagnostics/index.js";
import { checkSource } from "../frontend.js";
import { compileSpec, type CompileResult } from "../passes/compile.js";
import type { Spec } from "../check/spec.js";
import { readInput, type Output } from "./io.js";

export function compileFile(path: string, io: Output, until?: string): { spec: Spec; result: CompileResult } | undefined {
  const input = readInput(path);
  if (input.error) {
    io.err(formatDiagnostic(input.error));
    return undefined;
  }
  const checked = checkSource(input.bytes!, input.name);
  for (const d of checked.diagnostics) io.err(formatDiagnostic(d));
  if (!checked.ok) return undefined;
  const result = compileSpec(checked.spec, until ? { until } : {});
  const diags = sortDiagnostics(result.diagnostics);
  for (const d of diags) io.err(formatDiagnostic(d));
  if (hasErrors(diags) || !result.graph) return undefined;
  return { spec: checked.spec, result };
}
