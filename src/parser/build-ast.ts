/**
 * CST → AST. The CST may be partial after error recovery (missing tokens, recovered nodes), so
 * every accessor here tolerates absent children and drops what cannot be built; the syntax error
 * itself has already been reported by the parser.
 */
import type { CstElement, CstNode, IToken } from "chevrotain";
import type {
  Assign, DataStmt, ExportStmt, FreezeStmt, HybridName, HybridStmt, InitStmt, LayerSlice, MethodName,
  MethodStmt, ModelStmt, Override, Period, SaveStmt, SelectStmt, Selector, SelectorAtom, SelectorTerm,
  Span, Statement, TrainStmt, Unit, Value, AdapterVariant, HeaderStmt,
} from "./ast.js";
import { type Diagnostic, diag, q, didYouMean } from "../diagnostics/index.js";

const STATEMENT_WORDS = [
  "peft", "model", "select", "data", "freeze", "unfreeze", "lora", "adalora", "ia3", "bitfit", "adapter",
  "prefix", "p_tuning", "p_tuning_v2", "prompt_tuning", "mam", "unipelt", "combine", "init", "train",
  "save", "export",
];

function isToken(e: CstElement | undefined): e is IToken {
  return e !== undefined && "image" in e;
}

function isNode(e: CstElement | undefined): e is CstNode {
  return e !== undefined && "children" in e;
}

function tok(n: CstNode, label: string, i = 0): IToken | undefined {
  const e = n.children[label]?.[i];
  return isToken(e) && !e.isInsertedInRecovery && Number.isFinite(e.startOffset) ? e : undefined;
}

function toks(n: CstNode, label: string): IToken[] {
  return (n.children[label] ?? []).filter(isToken).filter((t) => !t.isInsertedInRecovery && Number.isFinite(t.startOffset));
}

function node(n: CstNode, label: string, i = 0): CstNode | undefined {
  const e = n.children[label]?.[i];
  return isNode(e) && !e.recoveredNode ? e : undefined;
}

function nodes(n: CstNode, label: string): CstNode[] {
  return (n.children[label] ?? []).filter(isNode).filter((c) => !c.recoveredNode);
}

export function tokenSpan(t: IToken): Span {
  return {
    line: t.startLine ?? 1,
    column: t.startColumn ?? 1,
    endLine: t.endLine ?? t.startLine ?? 1,
    endColumn: (t.endColumn ?? t.startColumn ?? 0) + 1,
    start: t.startOffset,
    end: (t.endOffset ?? t.startOffset) + 1,
  };
}

function join(a: Span, b: Span): Span {
  return { line: a.line, column: a.column, endLine: b.endLine, endColumn: b.endColumn, start: a.start, end: b.end };
}

/** Span of a CST node from its first to its last real token. */
function nodeSpan(n: CstNode): Span | undefined {
  const all: IToken[] = [];
  const walk = (c: CstNode): void => {
    for (const list of Object.values(c.children)) {
      for (const e of list) {
        if (isToken(e)) {
          if (!e.isInsertedInRecovery && Number.isFinite(e.startOffset)) all.push(e);
        } else walk(e);
      }
    }
  };
  walk(n);
  if (all.length === 0) return undefined;
  all.sort((x, y) => x.startOffset - y.startOffset);
  return join(tokenSpan(all[0]!), tokenSpan(all[all.length - 1]!));
}

/** Decodes a JSON-escaped string literal (the lexer already checked its form). */
function unquote(image: string): string {
  try {
    const v: unknown = JSON.parse(image);
    return typeof v === "string" ? v : image.slice(1, -1);
  } catch {
    return image.slice(1, -1);
  }
}

function parseNumber(image: string): number {
  return Number(image.replace(/_/g, ""));
}

const UNIT_OF: Record<string, Unit> = {
  token: "tokens", tokens: "tokens", step: "steps", steps: "steps", epoch: "epochs", epochs: "epochs", "%": "percent",
};

export class AstBuilder {
  readonly diagnostics: Diagnostic[] = [];
  constructor(private readonly file: string) {}

  statements(file: CstNode): Statement[] {
    const out: Statement[] = [];
    for (const st of nodes(file, "statement")) {
      const inner = Object.values(st.children)[0]?.[0];
      if (!isNode(inner) || inner.recoveredNode) continue;
      const s = this.statement(inner);
      if (s) out.push(s);
    }
    return out;
  }

  private statement(n: CstNode): Statement | undefined {
    const span = nodeSpan(n);
    if (!span) return undefined;
    switch (n.name) {
      case "headerStatement": return this.header(n, span);
      case "modelStatement": return this.model(n, span);
      case "selectStatement": return this.select(n, span);
      case "dataStatement": return this.data(n, span);
      case "freezeStatement": return this.freeze(n, span);
      case "methodStatement": return this.method(n, span);
      case "hybridStatement": return this.hybrid(n, span);
      case "initStatement": return this.init(n, span);
      case "trainStatement": return this.train(n, span);
      case "saveStatement": return this.save(n, span);
      case "exportStatement": return this.export(n, span);
      case "unknownStatement": {
        const w = tok(n, "word");
        if (w) {
          const guess = didYouMean(w.image, STATEMENT_WORDS);
          this.diagnostics.push(diag("P203", this.file, tokenSpan(w), [q(w.image), guess ? `; did you mean ${q(guess)}?` : ""]));
        }
        return undefined;
      }
      default: return undefined;
    }
  }

  private header(n: CstNode, span: Span): HeaderStmt | undefined {
    const v = tok(n, "version");
    return v ? { kind: "header", version: v.image, versionSpan: tokenSpan(v), span } : undefined;
  }

  private model(n: CstNode, span: Span): ModelStmt | undefined {
    const s = tok(n, "source");
    if (!s) return undefined;
    return { kind: "model", source: unquote(s.image), sourceSpan: tokenSpan(s), items: this.blockItems(node(n, "blockOrSemi")), span };
  }

  private select(n: CstNode, span: Span): SelectStmt | undefined {
    const name = tok(n, "name");
    const sel = this.selector(node(n, "selector"));
    if (!name || !sel) return undefined;
    return { kind: "select", name: name.image, nameSpan: tokenSpan(name), selector: sel, span };
  }

  private data(n: CstNode, span: Span): DataStmt | undefined {
    const split = tok(n, "split");
    if (!split) return undefined;
    const st: DataStmt = {
      kind: "data",
      split: split.image === "eval" ? "eval" : "train",
      splitSpan: tokenSpan(split),
      items: this.blockItems(node(n, "blockOrSemi")),
      span,
    };
    const f = tok(n, "file");
    if (f) {
      st.file = unquote(f.image);
      st.fileSpan = tokenSpan(f);
    }
    return st;
  }

  private freeze(n: CstNode, span: Span): FreezeStmt | undefined {
    const action = tok(n, "action");
    if (!action) return undefined;
    const word = tok(n, "word");
    let target: FreezeStmt["target"] | undefined;
    if (word) target = { kind: word.image === "all" ? "all" : "base", span: tokenSpan(word) };
    else {
      const sel = this.selector(node(n, "selector"));
      if (sel) target = { kind: "selector", selector: sel };
    }
    if (!target) return undefined;
    return { kind: "freeze", action: action.image === "unfreeze" ? "unfreeze" : "freeze", target, span };
  }

  private method(n: CstNode, span: Span): MethodStmt | undefined {
    const head = node(n, "methodName");
    const m = head && tok(head, "method");
    if (!head || !m) return undefined;
    const st: MethodStmt = {
      kind: "method",
      method: m.image as MethodName,
      headSpan: tokenSpan(m),
      args: nodes(n, "argument").map((a) => this.assign(a)).filter((a): a is Assign => a !== undefined),
      items: [],
      overrides: [],
      span,
    };
    const variant = tok(head, "variant");
    if (variant) {
      st.variant = variant.image as AdapterVariant;
      st.variantSpan = tokenSpan(variant);
      st.headSpan = join(st.headSpan, st.variantSpan);
    }
    const target = this.selector(node(n, "selector"));
    if (target) st.target = target;
    const block = node(n, "methodBlock");
    if (block) {
      st.items = nodes(block, "assignment").map((a) => this.assign(a)).filter((a): a is Assign => a !== undefined);
      st.overrides = nodes(block, "override").map((o) => this.override(o)).filter((o): o is Override => o !== undefined);
    }
    return st;
  }

  private override(n: CstNode): Override | undefined {
    const span = nodeSpan(n);
    const sel = this.selector(node(n, "selector"));
    if (!span || !sel) return undefined;
    return { selector: sel, items: this.blockItems(n), span };
  }

  private hybrid(n: CstNode, span: Span): HybridStmt | undefined {
    const h = tok(n, "hybrid");
    if (!h) return undefined;
    const st: HybridStmt = {
      kind: "hybrid",
      hybrid: h.image as HybridName,
      headSpan: tokenSpan(h),
      args: nodes(n, "argument").map((a) => this.assign(a)).filter((a): a is Assign => a !== undefined),
      items: [],
      members: [],
      span,
    };
    const target = this.selector(node(n, "selector"));
    if (target) st.target = target;
    const block = node(n, "hybridBlock");
    if (block) {
      st.items = nodes(block, "assignment").map((a) => this.assign(a)).filter((a): a is Assign => a !== undefined);
      for (const m of nodes(block, "methodStatement")) {
        const ms = nodeSpan(m);
        const built = ms && this.method(m, ms);
        if (built) st.members.push(built);
      }
    }
    return st;
  }

  private init(n: CstNode, span: Span): InitStmt | undefined {
    const d = tok(n, "dir");
    return d ? { kind: "init", from: unquote(d.image), fromSpan: tokenSpan(d), span } : undefined;
  }

  private train(n: CstNode, span: Span): TrainStmt {
    return { kind: "train", items: this.blockItems(n), span };
  }

  private save(n: CstNode, span: Span): SaveStmt {
    const st: SaveStmt = { kind: "save", span };
    const p = node(n, "period");
    if (p) {
      const unit = tok(p, "unit");
      const count = tok(p, "count");
      const ps = nodeSpan(p);
      if (unit && ps) {
        const period: Period = {
          count: count ? parseNumber(count.image) : 1,
          unit: unit.image.startsWith("step") ? "steps" : "epochs",
          span: ps,
        };
        st.every = period;
      }
    }
    const d = tok(n, "dir");
    if (d) {
      st.to = unquote(d.image);
      st.toSpan = tokenSpan(d);
    }
    const k = tok(n, "keep");
    if (k) {
      st.keep = parseNumber(k.image);
      st.keepSpan = tokenSpan(k);
    }
    return st;
  }

  private export(n: CstNode, span: Span): ExportStmt | undefined {
    const what = tok(n, "what");
    const d = tok(n, "dir");
    if (!what || !d) return undefined;
    return { kind: "export", what: what.image === "merged" ? "merged" : "adapter", to: unquote(d.image), toSpan: tokenSpan(d), span };
  }

  /** Items of `block` found directly or under a `blockOrSemi`. */
  private blockItems(n: CstNode | undefined): Assign[] {
    if (!n) return [];
    const block = n.name === "block" ? n : node(n, "block");
    if (!block) return [];
    return nodes(block, "assignment").map((a) => this.assign(a)).filter((a): a is Assign => a !== undefined);
  }

  private assign(n: CstNode): Assign | undefined {
    const key = tok(n, "key");
    const value = this.value(node(n, "value"));
    const span = nodeSpan(n);
    if (!key || !value || !span) return undefined;
    return { key: key.image, keySpan: tokenSpan(key), value, span };
  }

  private value(n: CstNode | undefined): Value | undefined {
    if (!n) return undefined;
    const span = nodeSpan(n);
    if (!span) return undefined;
    const quantity = node(n, "quantity");
    if (quantity) {
      const num = tok(quantity, "number");
      if (!num) return undefined;
      const v: Value = { kind: "number", value: parseNumber(num.image), text: num.image, span };
      const unit = tok(quantity, "unit");
      if (unit) v.unit = UNIT_OF[unit.image];
      return v;
    }
    const s = tok(n, "string");
    if (s) return { kind: "string", value: unquote(s.image), span };
    const r = tok(n, "role");
    if (r) return { kind: "role", value: r.image.slice(1), span };
    const t = node(n, "tuple");
    if (t) {
      const items = nodes(t, "value").map((c) => this.value(c)).filter((c): c is Value => c !== undefined);
      return { kind: "tuple", items, span };
    }
    const w = tok(n, "word");
    if (w) {
      if (w.image === "true" || w.image === "false") return { kind: "bool", value: w.image === "true", span };
      return { kind: "name", value: w.image, span };
    }
    return undefined;
  }

  selector(n: CstNode | undefined): Selector | undefined {
    if (!n) return undefined;
    const span = nodeSpan(n);
    const inc = node(n, "include");
    if (!span || !inc) return undefined;
    const terms = this.terms(inc);
    const exc = node(n, "exclude");
    const except = exc ? this.terms(exc) : [];
    if (terms.length === 0) return undefined;
    return { terms, except, span };
  }

  private terms(union: CstNode): SelectorTerm[] {
    const out: SelectorTerm[] = [];
    for (const t of nodes(union, "selectorTerm")) {
      const span = nodeSpan(t);
      if (!span) continue;
      const term: SelectorTerm = { span };
      const a = node(t, "selectorAtom");
      const atom = a && this.atom(a);
      if (atom) term.atom = atom;
      const lf = node(t, "layerFilter");
      if (lf) term.layers = nodes(lf, "slice").map((s) => this.slice(s)).filter((s): s is LayerSlice => s !== undefined);
      if (term.atom || term.layers) out.push(term);
    }
    return out;
  }

  private atom(n: CstNode): SelectorAtom | undefined {
    for (const [label, list] of Object.entries(n.children)) {
      const t = list[0];
      if (!isToken(t) || t.isInsertedInRecovery || !Number.isFinite(t.startOffset)) continue;
      const span = tokenSpan(t);
      switch (label) {
        case "name": return { kind: "name", text: t.image, span };
        case "path": return { kind: "path", text: t.image, span };
        case "glob": return { kind: "glob", text: unquote(t.image), span };
        case "role": return { kind: "role", name: t.image.slice(1), span };
        case "ref": return { kind: "ref", name: t.image.slice(1), span };
        case "regex": {
          const flagged = t.image.endsWith("i") && !t.image.endsWith("/");
          const body = t.image.slice(1, flagged ? -2 : -1);
          return { kind: "regex", source: body, flags: flagged ? "i" : "", span };
        }
        default: return undefined;
      }
    }
    return undefined;
  }

  private slice(n: CstNode): LayerSlice | undefined {
    const span = nodeSpan(n);
    if (!span) return undefined;
    const start = tok(n, "start");
    const colons = toks(n, "colon");
    if (colons.length === 0) {
      return start ? { kind: "index", index: parseNumber(start.image), span } : undefined;
    }
    const s: LayerSlice = { kind: "slice", span };
    const stop = tok(n, "stop");
    const step = tok(n, "step");
    if (start) s.start = parseNumber(start.image);
    if (stop) s.stop = parseNumber(stop.image);
    if (step) s.step = parseNumber(step.image);
    return s;
  }
}
