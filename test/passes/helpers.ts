/** Compiling .peft text for the pass tests: front end, base graph, pipeline, verify() after every pass. */
import { fileURLToPath } from "node:url";
import type { CompileOptions } from "../../src/passes/compile.js";
import { compileSpec } from "../../src/passes/compile.js";
import type { PassContext } from "../../src/passes/context.js";
import { checkSource } from "../../src/frontend.js";
import { numel, verify, type Graph, type Param } from "../../src/ir/index.js";
import type { Diagnostic } from "../../src/diagnostics/index.js";

export const REPO = fileURLToPath(new URL("../../", import.meta.url));

export interface Compiled {
  graph?: Graph;
  ctx?: PassContext;
  diagnostics: Diagnostic[];
  /** verify() messages per pass, only for passes that left some. */
  broken: { pass: string; errors: string[] }[];
  passes: string[];
}

/** The last inject pass: the tests stop there unless told otherwise (later passes are other tests' subject). */
export const LAST_INJECT = "inject-prompt";

/** A run needs a length; tests that do not care about training get one step. */
export function compileText(text: string, opts: CompileOptions & { file?: string } = {}): Compiled {
  const src = /\btrain\s*\{/.test(text) ? text : `${text}\ntrain { steps = 1; }\n`;
  const fe = checkSource(src, opts.file ?? `${REPO}test/passes/case.peft`);
  if (!fe.ok) return { diagnostics: fe.diagnostics, broken: [], passes: [] };
  const broken: Compiled["broken"] = [];
  const passes: string[] = [];
  const r = compileSpec(fe.spec, {
    until: LAST_INJECT,
    ...opts,
    after: (pass, g) => {
      passes.push(pass.name);
      const errors = verify(g);
      if (errors.length) broken.push({ pass: pass.name, errors });
      opts.after?.(pass, g);
    },
  });
  return { ...(r.graph ? { graph: r.graph } : {}), ...(r.ctx ? { ctx: r.ctx } : {}), diagnostics: [...fe.diagnostics, ...r.diagnostics], broken, passes };
}

/** Compiles text that must succeed, verifying after every pass. */
export function compileOk(text: string, opts: CompileOptions = {}): { graph: Graph; ctx: PassContext } {
  const c = compileText(text, opts);
  const errs = c.diagnostics.filter((d) => d.severity === "error").map((d) => `${d.code}: ${d.message}`);
  if (errs.length) throw new Error(`unexpected diagnostics:\n${errs.join("\n")}`);
  if (c.broken.length) throw new Error(`verify failed after ${c.broken[0]!.pass}:\n${c.broken[0]!.errors.slice(0, 5).join("\n")}`);
  if (!c.graph || !c.ctx) throw new Error("no graph");
  return { graph: c.graph, ctx: c.ctx };
}

/** The parameters methods added, as `name: [shape]`, in graph order. */
export function added(g: Graph): Record<string, number[]> {
  return Object.fromEntries(g.params.filter((p) => p.origin !== "base").map((p) => [p.name, p.shape]));
}

export function count(ps: Param[]): number {
  return ps.reduce((s, p) => s + numel(p.shape), 0);
}

export function trainableCount(g: Graph): number {
  return count(g.params.filter((p) => p.trainable));
}

export function param(g: Graph, name: string): Param {
  const p = g.params.find((x) => x.name === name);
  if (!p) throw new Error(`no param ${name}`);
  return p;
}

/** The op that defines a value. */
export function def(g: Graph, value: string) {
  const op = g.ops.find((o) => o.outputs.some((x) => x.name === value));
  if (!op) throw new Error(`no op defines ${value}`);
  return op;
}

export function typeOf(g: Graph, value: string): string {
  const v = g.inputs.find((i) => i.name === value) ?? g.ops.flatMap((o) => o.outputs).find((o) => o.name === value);
  if (!v) throw new Error(`no value ${value}`);
  return `${v.dtype}[${v.shape.join(",")}]`;
}
