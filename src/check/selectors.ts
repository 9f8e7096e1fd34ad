/**
 * Form checks of selectors, before any model is known: regexes compile, `$name` refers to an
 * earlier `select`, slices are integers with a non-zero step. Matching against a module tree comes
 * later (src/models/select.ts).
 */
import type { LayerSlice, Selector, SelectorTerm } from "../parser/ast.js";
import { type Diagnostic, diag, didYouMean, q } from "../diagnostics/index.js";
import { sliceText } from "../parser/print.js";

export { sliceText };

export function checkSelector(sel: Selector, selects: ReadonlyMap<string, Selector>, file: string, out: Diagnostic[]): boolean {
  let ok = true;
  for (const t of [...sel.terms, ...sel.except]) ok = checkTerm(t, selects, file, out) && ok;
  return ok;
}

function checkTerm(t: SelectorTerm, selects: ReadonlyMap<string, Selector>, file: string, out: Diagnostic[]): boolean {
  let ok = true;
  const a = t.atom;
  if (a?.kind === "regex") {
    if (a.source.length === 0) ok = false;
    try {
      new RegExp(`^(?:${a.source})$`, a.flags);
    } catch (e) {
      const why = e instanceof Error ? e.message.replace(/^Invalid regular expression: /, "") : "cannot compile";
      out.push(diag("P308", file, a.span, [`/${a.source}/${a.flags}`, why]));
      ok = false;
    }
  } else if (a?.kind === "ref" && !selects.has(a.name)) {
    const guess = didYouMean(a.name, selects.keys());
    out.push(diag("P309", file, a.span, [a.name, guess ? `; did you mean $${guess}?` : ""]));
    ok = false;
  }
  for (const s of t.layers ?? []) ok = checkSlice(s, file, out) && ok;
  return ok;
}

function checkSlice(s: LayerSlice, file: string, out: Diagnostic[]): boolean {
  const nums = s.kind === "index" ? [s.index] : [s.start, s.stop, s.step];
  for (const n of nums) {
    if (n !== undefined && (!Number.isSafeInteger(n))) {
      out.push(diag("P310", file, s.span, [sliceText(s), "indices must be whole numbers"]));
      return false;
    }
  }
  if (s.kind === "slice" && s.step === 0) {
    out.push(diag("P310", file, s.span, [sliceText(s), "the step cannot be zero"]));
    return false;
  }
  return true;
}


export { q };
