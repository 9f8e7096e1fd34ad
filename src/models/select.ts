/**
 * Resolves a selector (`query_key_value in layers[-4:] except $frozen`) against a model profile,
 * before any weight is read. Each term, and each except term, must match something on its own; when it
 * does not, the message lists the model's real candidates, so a selector written for one architecture
 * and pointed at another says what to write instead.
 */
import { diag, didYouMean, q, type Diagnostic } from "../diagnostics/index.js";
import type { Selector, SelectorAtom, SelectorTerm, Span } from "../parser/ast.js";
import { sliceIndices, slicesText, sliceText } from "./layer-slice.js";
import { atomText, regexTest, suffixTest, type PathTest } from "./select-atoms.js";
import { Selection, type Match } from "./selection.js";
import type { ModelProfile, ModuleInfo } from "./types.js";

export type { Match } from "./selection.js";

export interface SelectContext {
  file: string;
  /** Named selectors from `select NAME = ...;`, for `$NAME`. */
  selects: ReadonlyMap<string, Selector>;
  /** What the selector is for, in messages: `lora`, `freeze`. */
  what: string;
}

export interface SelectResult {
  /** The selection, in module-tree order, each module (or row slice) once. */
  matches: Match[];
  /** What each term and each except term matched on its own, terms first. */
  perTerm: { term: SelectorTerm; matched: Match[] }[];
  diagnostics: Diagnostic[];
}

/** Roles in the order messages list them. */
const ROLE_ORDER = [
  "q", "k", "v", "qkv", "attn_out", "ffn_in", "ffn_gate", "ffn_up", "ffn_out",
  "embed", "pos_embed", "head", "norm", "linear",
];

export function resolveSelector(profile: ModelProfile, selector: Selector, ctx: SelectContext): SelectResult {
  const r = new Resolver(profile, ctx);
  const { selection, perTerm } = r.selector(selector, []);
  return { matches: selection.toMatches(profile.modules), perTerm, diagnostics: r.diagnostics };
}

/** Leaf names of the adaptable linear modules (the head excluded), unique, in module-tree order. */
export function linearLeafNames(profile: ModelProfile): string[] {
  const names = new Set<string>();
  for (const m of profile.modules) if (m.roles.includes("linear")) names.add(leaf(m.path));
  return [...names];
}

/** The roles this profile defines, slice roles included, without `@`. */
export function roleNames(profile: ModelProfile): string[] {
  const have = new Set<string>(profile.sliceRoles.map((s) => s.role));
  for (const m of profile.modules) for (const role of m.roles) have.add(role);
  const known = ROLE_ORDER.filter((role) => have.has(role));
  return [...known, ...[...have].filter((role) => !ROLE_ORDER.includes(role)).sort()];
}

class Resolver {
  readonly diagnostics: Diagnostic[] = [];

  constructor(
    private readonly profile: ModelProfile,
    private readonly ctx: SelectContext,
  ) {}

  selector(sel: Selector, refStack: string[]): { selection: Selection; perTerm: SelectResult["perTerm"] } {
    const perTerm: SelectResult["perTerm"] = [];
    const union = new Selection();
    let failed = false;
    const run = (term: SelectorTerm): Selection | undefined => {
      const got = this.term(term, refStack);
      perTerm.push({ term, matched: (got ?? new Selection()).toMatches(this.profile.modules) });
      if (!got) failed = true;
      return got;
    };
    for (const term of sel.terms) {
      const got = run(term);
      if (got) union.addAll(got);
    }
    const removed = new Selection();
    for (const term of sel.except) {
      const got = run(term);
      if (got) removed.addAll(got);
    }
    const selection = union.minus(removed);
    if (!failed && sel.except.length > 0 && union.size > 0 && selection.size === 0) {
      this.diagnostics.push(
        diag("P407", this.ctx.file, sel.span, [], `the except terms remove every module the ${this.ctx.what} selector matches`),
      );
    }
    return { selection, perTerm };
  }

  /** The term's modules; undefined after reporting why it matched nothing. */
  private term(term: SelectorTerm, refStack: string[]): Selection | undefined {
    const atomSel = term.atom ? this.atom(term.atom, refStack) : undefined;
    const layers = term.layers ? this.layers(term) : undefined;
    if (term.atom && atomSel && atomSel.size === 0) {
      this.noMatch(term.atom);
      return undefined;
    }
    if ((term.atom && !atomSel) || (term.layers && !layers)) return undefined;
    if (!term.atom && !term.layers) throw new Error("a selector term has neither an atom nor layers[...]");

    let sel: Selection;
    if (atomSel) {
      sel = layers ? atomSel.filter((m) => m.layer !== undefined && layers.has(m.layer)) : atomSel;
    } else {
      sel = new Selection();
      for (const m of this.profile.modules) if (m.layer !== undefined && layers?.has(m.layer)) sel.addWhole(m);
    }
    if (sel.size > 0) return sel;

    if (term.atom && atomSel && term.layers) {
      const text = `${atomText(term.atom)} in layers${slicesText(term.layers)}`;
      const found = atomSel.toMatches(this.profile.modules).map((x) => x.module);
      const outside = [...new Set(found.filter((m) => m.layer === undefined).map((m) => m.path))];
      const inLayers = [...new Set(found.flatMap((m) => (m.layer === undefined ? [] : [m.layer])))];
      const parts: string[] = [];
      if (outside.length > 0) parts.push(`${listPaths(outside)}, outside ${this.profile.layerContainer}`);
      if (inLayers.length > 0) parts.push(`modules of layers ${inLayers.join(", ")}`);
      const why = `it matches only ${parts.join(" and ")}`;
      this.diagnostics.push(diag("P401", this.ctx.file, term.span, [q(text), this.profile.name, why]));
    }
    return undefined;
  }

  /** Reports an atom that matched nothing in the whole model. */
  private noMatch(atom: SelectorAtom): void {
    const leaves = [...new Set(this.profile.modules.map((m) => leaf(m.path)))];
    const word = atom.kind === "name" || atom.kind === "path" || atom.kind === "glob" ? leaf(atom.text) : undefined;
    const guess = word === undefined ? undefined : didYouMean(word, leaves);
    const help = guess !== undefined && guess !== word ? `did you mean ${q(guess)}?` : undefined;
    const candidates = `linear modules are ${linearLeafNames(this.profile).join(", ")}`;
    this.diagnostics.push(diag("P401", this.ctx.file, atom.span, [q(atomText(atom)), this.profile.name, candidates], help));
  }

  /** The atom's modules over the whole model; undefined after reporting an invalid atom. */
  private atom(atom: SelectorAtom, refStack: string[]): Selection | undefined {
    switch (atom.kind) {
      case "name":
      case "path":
      case "glob":
        return this.byTest(suffixTest(atom.text));
      case "regex": {
        const test = regexTest(atom.source, atom.flags);
        if (typeof test === "string") {
          this.diagnostics.push(diag("P308", this.ctx.file, atom.span, [atomText(atom), test]));
          return undefined;
        }
        return this.byTest(test);
      }
      case "role":
        return this.role(atom.name, atom.span);
      case "ref":
        return this.ref(atom.name, atom.span, refStack);
    }
  }

  private byTest(test: PathTest): Selection {
    const sel = new Selection();
    for (const m of this.profile.modules) if (test(m.path)) sel.addWhole(m);
    return sel;
  }

  private role(name: string, span: Span): Selection | undefined {
    const sel = new Selection();
    for (const m of this.profile.modules) if (m.roles.includes(name)) sel.addWhole(m);
    for (const s of this.profile.sliceRoles) {
      if (s.role !== name) continue;
      for (const m of this.profile.modules) if (leaf(m.path) === s.module) sel.addRange(m, [s.rowStart, s.rowEnd]);
    }
    if (sel.size > 0) return sel;
    const roles = roleNames(this.profile);
    const guess = didYouMean(name, roles);
    const help = guess === undefined ? undefined : `did you mean @${guess}?`;
    const list = roles.map((x) => `@${x}`).join(", ");
    this.diagnostics.push(diag("P405", this.ctx.file, span, [this.profile.name, name, list], help));
    return undefined;
  }

  private ref(name: string, span: Span, refStack: string[]): Selection | undefined {
    const target = this.ctx.selects.get(name);
    if (!target || refStack.includes(name)) {
      const why = target
        ? ` before its own definition ends (${[...refStack, name].map((x) => `$${x}`).join(" → ")})`
        : suffixGuess(name, [...this.ctx.selects.keys()]);
      this.diagnostics.push(diag("P309", this.ctx.file, span, [name, why]));
      return undefined;
    }
    const before = this.diagnostics.length;
    const { selection } = this.selector(target, [...refStack, name]);
    // Errors inside the named selector are reported at its own spans; the reference adds nothing.
    return this.diagnostics.length > before && selection.size === 0 ? undefined : selection;
  }

  /** The layer indices of the term's layers[...], reporting each empty or invalid element. */
  private layers(term: SelectorTerm): Set<number> | undefined {
    const n = this.profile.dims.numLayers;
    const out = new Set<number>();
    let ok = true;
    for (const s of term.layers ?? []) {
      const idx = sliceIndices(s, n);
      if (typeof idx === "string") {
        this.diagnostics.push(diag("P310", this.ctx.file, s.span, [sliceText(s), idx]));
        ok = false;
      } else if (idx.length === 0) {
        this.diagnostics.push(diag("P402", this.ctx.file, s.span, [sliceText(s), this.profile.name, n, n - 1]));
        ok = false;
      } else {
        for (const i of idx) out.add(i);
      }
    }
    return ok ? out : undefined;
  }
}

function leaf(path: string): string {
  const i = path.lastIndexOf(".");
  return i < 0 ? path : path.slice(i + 1);
}

function listPaths(paths: string[]): string {
  return paths.length <= 3 ? paths.join(", ") : `${paths.slice(0, 3).join(", ")} and ${paths.length - 3} more`;
}

function suffixGuess(name: string, names: string[]): string {
  const guess = didYouMean(name, names);
  return guess === undefined ? "" : `; did you mean $${guess}?`;
}
