/** Selectors back to source text, for messages and `pefc plan`. */
import type { LayerSlice, Selector, SelectorTerm } from "./ast.js";

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
