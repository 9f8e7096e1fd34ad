/**
 * The front end as one call: bytes of a .peft file → spec and every diagnostic of parsing and
 * checking, sorted by position. What `pefc check` runs, and what embedders call.
 */
import { check, type CheckOptions } from "./check/index.js";
import { withoutKnockOns } from "./check/knock-on.js";
import type { Spec } from "./check/spec.js";
import { type Diagnostic, sortDiagnostics, hasErrors } from "./diagnostics/index.js";
import { parse, type PeftFile } from "./parser/index.js";

export interface FrontendResult {
  ast: PeftFile;
  spec: Spec;
  diagnostics: Diagnostic[];
  ok: boolean;
}

export function checkSource(source: string | Uint8Array, file: string, options: CheckOptions = {}): FrontendResult {
  const parsed = parse(source, file);
  const checked = check(parsed.ast, options);
  const diagnostics = sortDiagnostics([...parsed.diagnostics, ...withoutKnockOns(checked.diagnostics, parsed.diagnostics, parsed.ast)]);
  return { ast: parsed.ast, spec: checked.spec, diagnostics, ok: !hasErrors(diagnostics) };
}
