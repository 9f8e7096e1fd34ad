/**
 * One mistake, one error: when the file has syntax errors, the checker's findings that follow from
 * them are dropped. Those are findings inside a statement the parser had to repair (a repaired
 * `alpha=(16` is also "a tuple, not a number"), and the whole-file conclusions a dropped statement
 * makes false (`loar r=4 …` is not also "nothing to train", nor a broken model line "no model").
 */
import type { Diagnostic } from "../diagnostics/index.js";
import type { PeftFile } from "../parser/ast.js";

const WHOLE_FILE = new Set(["P503", "P205"]);

export function withoutKnockOns(checks: readonly Diagnostic[], syntax: readonly Diagnostic[], ast: PeftFile): Diagnostic[] {
  const errors = syntax.filter((d) => d.severity === "error");
  if (errors.length === 0) return [...checks];
  const repaired = ast.statements.filter((st) => errors.some((e) => e.span !== undefined && e.span.start >= st.span.start && e.span.start <= st.span.end));
  return checks.filter((d) => {
    if (WHOLE_FILE.has(d.code)) return false;
    const at = d.span?.start;
    return at === undefined || !repaired.some((st) => at >= st.span.start && at <= st.span.end);
  });
}
