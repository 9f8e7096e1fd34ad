/**
 * Pass resolve-selectors: binds every selector of the spec to the model's modules and layers, and
 * refuses what cannot work before any weight is read: terms that match nothing (P401...), methods
 * pointed at modules they cannot adapt (P403, P404), two methods of one kind on one module (P501),
 * full training of an adapted module (P502). The graph is returned unchanged.
 */
import type { MethodSpec } from "../check/spec.js";
import { diag, q } from "../diagnostics/index.js";
import type { Graph } from "../ir/index.js";
import { parse } from "../parser/index.js";
import { relocateSpans, selectorText } from "../parser/print.js";
import type { Selector, Span } from "../parser/ast.js";
import { resolveSelector, type Match } from "../models/select.js";
import type { Arch, ModelProfile } from "../models/types.js";
import { methodLabel, type MethodTarget, type PassContext } from "./context.js";

/** PEFT's default target modules per architecture, as roles. */
const DEFAULT_TARGETS: Record<"lora" | "ia3", Record<Arch, string>> = {
  lora: { llama: "@q, @v", chatglm2: "@qkv", gpt2: "@qkv" },
  ia3: { llama: "@k, @v, @ffn_out", chatglm2: "@qkv, @ffn_out", gpt2: "@qkv, @ffn_out" },
};

/** How methods compose on one module; two methods of one kind on one module conflict (P501). */
function compositionKind(m: MethodSpec): string | undefined {
  switch (m.method) {
    case "lora": case "adalora": return "low-rank update of";
    case "ia3": return "rescale";
    case "bitfit": return "train the bias of";
    default: return undefined;
  }
}

function parseSelector(text: string, at: Span): Selector {
  const stmt = parse(`freeze ${text};`, "<default>").ast.statements[0];
  if (!stmt || stmt.kind !== "freeze" || stmt.target.kind !== "selector") throw new Error(`bad default selector ${text}`);
  return relocateSpans(stmt.target.selector, at);
}

function matchText(m: Match): string {
  return m.rows ? `${m.module.path}[${m.rows[0]}:${m.rows[1]}]` : m.module.path;
}

export function resolveSelectors(graph: Graph, ctx: PassContext): Graph {
  const { spec, profile } = ctx;
  const selects = new Map(Object.entries(spec.selects));
  const resolve = (sel: Selector, what: string) => {
    const r = resolveSelector(profile, sel, { file: ctx.file, selects, what });
    ctx.diagnostics.push(...r.diagnostics);
    return r;
  };

  ctx.targets = spec.methods.map((m) => {
    const t = target(m);
    if (m.within) {
      const inside = new Set(resolve(m.within, methodLabel(m)).matches.map((x) => x.module.layer).filter((l) => l !== undefined));
      t.modules = t.modules.filter((x) => x.module.layer !== undefined && inside.has(x.module.layer));
      t.layers = t.layers.filter((l) => inside.has(l));
    }
    return t;
  });

  function target(m: MethodSpec): MethodTarget {
    const t: MethodTarget = { modules: [], layers: [], terms: [], overrides: [] };
    const what = methodLabel(m);
    let sel = m.target;
    if (!sel && (m.method === "lora" || m.method === "adalora" || m.method === "ia3")) {
      t.defaultTarget = DEFAULT_TARGETS[m.method === "ia3" ? "ia3" : "lora"][profile.arch];
      sel = parseSelector(t.defaultTarget, m.span);
    }
    if (!sel) {
      if (m.method === "bitfit") t.modules = profile.modules.filter((x) => x.hasBias).map((module) => ({ module }));
      if (m.method === "adapter" || m.method === "prefix" || m.method === "p_tuning_v2") t.layers = allLayers(profile);
      return t;
    }
    const r = resolve(sel, what);
    if (!t.defaultTarget) {
      const n = sel.terms.length;
      t.terms = r.perTerm.map((p, i) => ({ term: p.term, matched: p.matched, except: i >= n }));
    }
    if (m.method === "adapter" || m.method === "prefix" || m.method === "p_tuning_v2") {
      t.layers = [...new Set(r.matches.map((x) => x.module.layer).filter((l): l is number => l !== undefined))].sort((a, b) => a - b);
      if (r.matches.length > 0 && t.layers.length === 0) {
        ctx.diagnostics.push(diag("P403", ctx.file, sel.span, [what, "modules outside the layers", "it attaches to whole layers; select layers, e.g. layers[2:]"]));
      }
      return t;
    }
    t.modules = r.matches;
    checkModuleKinds(m, t.modules, sel.span, ctx);
    if (m.method === "bitfit") {
      const without = t.modules.filter((x) => !x.module.hasBias);
      if (without.length === t.modules.length && t.modules.length > 0) {
        ctx.diagnostics.push(diag("P503", ctx.file, sel.span, [`bitfit selected ${t.modules.length} modules and none has a bias`]));
      } else if (without.length > 0) {
        ctx.diagnostics.push(diag("P315", ctx.file, sel.span, [`bitfit: ${without.length} of ${t.modules.length} selected modules have no bias and are skipped`]));
      }
      t.modules = t.modules.filter((x) => x.module.hasBias);
    }
    if (m.method === "lora") {
      t.overrides = m.overrides.map((o) => {
        const or = resolve(o.selector, "override");
        const inside = new Set(t.modules.map((x) => x.module.path));
        const modules = or.matches.map((x) => x.module.path).filter((p) => inside.has(p));
        if (or.diagnostics.length === 0 && modules.length === 0) {
          ctx.diagnostics.push(diag("P406", ctx.file, o.selector.span, [q(selectorText(o.selector))]));
        }
        return { selector: o.selector, options: o.options as Record<string, number>, modules };
      });
    }
    return t;
  }

  for (const f of spec.freeze) {
    if (f.target.kind !== "selector") ctx.freezeSteps.push({ action: f.action, all: true, modules: [] });
    else ctx.freezeSteps.push({ action: f.action, all: false, modules: resolve(f.target.selector, f.action).matches });
  }
  conflicts(ctx);
  return graph;
}

function allLayers(p: ModelProfile): number[] {
  return Array.from({ length: p.dims.numLayers }, (_, i) => i);
}

function checkModuleKinds(m: MethodSpec, modules: Match[], at: Span, ctx: PassContext): void {
  const what = methodLabel(m);
  for (const x of modules) {
    if (m.method !== "bitfit" && x.module.kind !== "linear") {
      ctx.diagnostics.push(diag("P403", ctx.file, at, [what, x.module.path, `a ${x.module.kind} module; it adapts linear modules`]));
      return;
    }
    if (x.rows) {
      const fused = x.module.path.split(".").pop() ?? x.module.path;
      ctx.diagnostics.push(diag("P404", ctx.file, at, [what, matchText(x), fused], `target ${q(fused)} as a whole`));
      return;
    }
  }
}

/** P501 (two methods of one kind on one module or layer) and P502 (unfreeze of an adapted module). */
function conflicts(ctx: PassContext): void {
  const owner = new Map<string, { m: MethodSpec; kind: string }>();
  ctx.spec.methods.forEach((m, i) => {
    const t = ctx.targets[i]!;
    const kind = compositionKind(m);
    const claims: [string, string][] = [];
    if (kind) for (const x of t.modules) claims.push([`${kind}|${x.module.path}`, x.module.path]);
    if (m.method === "prefix" || m.method === "p_tuning_v2") for (const l of t.layers) claims.push([`prefix|${l}`, `layer ${l}`]);
    if (m.method === "adapter") {
      const places = m.variant === "houlsby" ? ["after attention", "after the feed-forward block"] : m.variant === "pfeiffer" ? ["after the feed-forward block"] : ["beside the feed-forward block"];
      for (const l of t.layers) for (const p of places) claims.push([`adapter ${p}|${l}`, `layer ${l} ${p}`]);
    }
    if (m.method === "p_tuning" || m.method === "prompt_tuning") claims.push(["input", "the input embeddings"]);
    for (const [key, where] of claims) {
      const first = owner.get(key);
      if (first) {
        ctx.diagnostics.push(diag("P501", ctx.file, m.span, [methodLabel(m), methodLabel(first.m), first.m.line, kind ?? "change", where]));
        return;
      }
      owner.set(key, { m, kind: kind ?? "change" });
    }
  });
  const adapted = new Map<string, MethodSpec>();
  ctx.spec.methods.forEach((m, i) => {
    if (m.method === "lora" || m.method === "adalora" || m.method === "ia3") for (const x of ctx.targets[i]!.modules) adapted.set(x.module.path, m);
  });
  ctx.spec.freeze.forEach((f, i) => {
    const step = ctx.freezeSteps[i]!;
    if (f.action !== "unfreeze") return;
    const paths = step.all ? [...adapted.keys()] : step.modules.map((u) => u.module.path);
    const hit = paths.find((p) => adapted.has(p));
    if (hit) {
      const m = adapted.get(hit)!;
      const what = f.target.kind === "selector" ? hit : f.target.kind;
      ctx.diagnostics.push(diag("P502", ctx.file, f.span, [what, methodLabel(m), m.line, hit]));
    }
  });
}
