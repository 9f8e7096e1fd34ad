/** Selectors back to source text, for messages and `pefc plan`. */
import type { LayerSlice, Selector, SelectorTerm, Span } from "./ast.js";

export function sliceText(s: LayerSlice): string {
  if (s.kind === "index") return `[${s.index}]`;
  const part = (n?: number) => (n === undefined ? "" : String(n));
  return `[${part(s.start)}:${part(s.stop)}${s.step !== undefined ? `:${s.step}` : ""}]`;
}

export function termText(t: SelectorTerm): string {
  const a = t.atom;
  const atom = !a ? "" : a.kind === "regex" ? `/${a.source}/${a.flags}` : a.kind === "role" ? `@${a.name}` : a.kind === "ref" ? `$${a.name}` : a.kind === "glob" ? JSON.stringify(a.text) : a.text;
  const layers = t.layers ? `layers[${t.layers.map((s) => sliceText(s).slice(1, -1)).join(", ")}]` : "";
  return atom && layers ? `${atom} in ${layers}` : atom || layers;
}

export function selectorText(s: Selector): string {
  const inc = s.terms.map(termText).join(", ");
  return s.except.length ? `${inc} except ${s.except.map(termText).join(", ")}` : inc;
}

/**
 * A copy of an AST fragment parsed from pefc's own text (a preset, a default selector) with every
 * span moved onto `at`, so messages about it point at the user's statement.
 */
export function relocateSpans<T>(node: T, at: Span): T {
  const walk = (x: unknown): unknown => {
    if (Array.isArray(x)) return x.map(walk);
    if (x && typeof x === "object") {
      if ("line" in x && "start" in x && "endColumn" in x) return { ...at };
      return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, walk(v)]));
    }
    return x;
  };
  return walk(node) as T;
}
